package main

// Shell completion: `shoal completion bash|zsh|fish` prints a script that
// asks the binary itself what completes the word being typed
// (`shoal __complete WORDS...`), so the candidates follow the binary's
// own commands and flags, and remote paths come from the cluster.

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"shoal/client"
	"shoal/secure"
)

// servers are the commands that run as servers, with their flags' owner.
var servers = map[string]server{
	"dev": devMain, "router": routerMain, "primary": nodeMain, "replica": nodeMain, "standby": nodeMain,
	"bench": benchMain, "mount": mountMain, "umount": umountMain,
}

// commandNames lists every top-level command, for completion.
func commandNames() []string {
	names := []string{"version", "completion", "help"}
	for name := range servers {
		names = append(names, name)
	}
	for _, c := range client.Commands {
		names = append(names, c.Name)
	}
	for _, c := range secure.Commands {
		names = append(names, c.Name)
	}
	return names
}

// filesMarker tells the script to complete local file names.
const filesMarker = ":files"

// complete prints the completions of the last of words, which follow
// the program's name on the command line being typed.
func complete(w io.Writer, words []string) {
	if len(words) == 0 {
		return
	}
	cur := words[len(words)-1]
	var out []string
	files := false
	switch cmd := words[0]; {
	case len(words) == 1:
		out = client.WithPrefix(commandNames(), cur)
	case cmd == "completion":
		if len(words) == 2 {
			out = client.WithPrefix([]string{"bash", "zsh", "fish"}, cur)
		}
	case cmd == "version":
		out = client.WithPrefix([]string{"--json"}, cur)
	case servers[cmd] != nil:
		if strings.HasPrefix(cur, "-") {
			fs, _, _ := serverFlags(cmd, servers[cmd], func() *slog.Logger { return nil })
			out = client.FlagWords(fs, cur)
		} else {
			files = true // data directories, mount points, files of flags
		}
	default:
		c := client.Complete(cmd, words[1:], os.Getenv)
		out, files = c.Words, c.Files
		if !isClientCommand(cmd) {
			files = true // the secrets commands write files
		}
	}
	if files {
		fmt.Fprintln(w, filesMarker)
		return
	}
	for _, o := range out {
		fmt.Fprintln(w, o)
	}
}

func isClientCommand(name string) bool {
	for _, c := range client.Commands {
		if c.Name == name {
			return true
		}
	}
	return false
}

// completionScript prints the script of a shell, or says which shells
// there are.
func completionScript(args []string) int {
	scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
	if len(args) != 1 || scripts[args[0]] == "" {
		fmt.Fprintln(os.Stderr, `shoal completion: want one shell: bash, zsh or fish; e.g. add
  source <(shoal completion bash)       to ~/.bashrc
  source <(shoal completion zsh)        to ~/.zshrc
  shoal completion fish | source        to ~/.config/fish/config.fish`)
		return 2
	}
	fmt.Print(scripts[args[0]])
	return 0
}

// The scripts call the binary the user typed (./shoal, a full path) with
// the words up to the cursor.
const bashCompletion = `# shoal completion for bash: source <(shoal completion bash)
_shoal() {
  local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' out
  out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  if [[ $out == ":files" ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY=($out)
  if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
    compopt -o nospace 2>/dev/null
  fi
}
complete -F _shoal shoal
`

const zshCompletion = `#compdef shoal
# shoal completion for zsh: source <(shoal completion zsh)
_shoal() {
  local -a out dirs others
  out=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ ${out[1]} == ":files" ]]; then
    _files
    return
  fi
  dirs=(${(M)out:#*/})
  others=(${out:#*/})
  (( ${#dirs} )) && compadd -Q -S '' -- "${dirs[@]}"
  (( ${#others} )) && compadd -Q -- "${others[@]}"
}
if (( $+functions[compdef] )); then
  compdef _shoal shoal
fi
`

const fishCompletion = `# shoal completion for fish: shoal completion fish | source
function __shoal_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] 2>/dev/null)
    if test "$out[1]" = ":files"
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $out
end
complete -c shoal -f -a '(__shoal_complete)'
`

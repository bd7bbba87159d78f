package main

import "testing"

func TestByteSizeSet(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "64MiB", want: 64 << 20},
		{in: "64MB", want: 64 << 20},
		{in: "1G", want: 1 << 30},
		{in: "10T", want: 10 << 40},
		{in: "8k", want: 8 << 10},
		{in: " 2 KiB ", want: 2 << 10},
		{in: "8388607T", want: 8388607 << 40}, // the largest T that fits
		{in: "1.5G", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "G", wantErr: true},
		{in: "8388608T", wantErr: true},
		{in: "99999999999T", wantErr: true},
		{in: "9223372036854775808", wantErr: true},
	}
	for _, tt := range tests {
		b := byteSize(-7) // a refused value must leave the flag as it was
		err := b.Set(tt.in)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("Set(%q) = %d, want an error", tt.in, b)
		case tt.wantErr && b != -7:
			t.Errorf("Set(%q) failed but changed the value to %d", tt.in, b)
		case !tt.wantErr && err != nil:
			t.Errorf("Set(%q): %v", tt.in, err)
		case !tt.wantErr && int64(b) != tt.want:
			t.Errorf("Set(%q) = %d, want %d", tt.in, b, tt.want)
		}
	}
}

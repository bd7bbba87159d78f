// The Shoal console: polls this router's API (/v1/cluster, /v1/stats,
// /v1/events, /readyz) and browses files through /v1/fs, with the token
// the user logged in with. Nothing is loaded from elsewhere.
"use strict";

const POLL_MS = 1000;
const SPARK_POINTS = 90;
const $ = (sel) => document.querySelector(sel);

let token = sessionStorage.getItem("shoal-token") || "";
let cwd = sessionStorage.getItem("shoal-cwd") || "/";
let lastSeq = 0;
let lastStats = null;
let timer = null;
const series = { rps: [], lat: [], in: [], out: [] };

// api calls the router's API with the token; a 401 takes the user back to
// the login form. It resolves to the response, or throws an Error whose
// message is the router's own.
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  const resp = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
  if (resp.status === 401) {
    const msg = await errorText(resp);
    showLogin(token ? "The token was refused: " + msg : "");
    throw new Error(msg);
  }
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return body.message || body.error || resp.statusText;
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

async function json(path) {
  return (await api(path)).json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + " " + units[i];
}

// --- login -----------------------------------------------------------------

function showLogin(why) {
  stopPolling();
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = why || "";
  $("#whoami").textContent = "";
  $("#token").focus();
}

async function start() {
  try {
    const me = await json("/v1/whoami");
    $("#whoami").textContent = "logged in as " + me.name + (me.admin ? " (admin)" : "");
  } catch (e) {
    if ($("#login").hidden) showLogin(e.message);
    return;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = !token;
  listDir(cwd);
  poll();
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("shoal-token", token);
  $("#login-error").textContent = "";
  start();
});

$("#logout").addEventListener("click", () => {
  token = "";
  sessionStorage.removeItem("shoal-token");
  showLogin("");
});

// --- the cluster view ----------------------------------------------------------

function stopPolling() {
  if (timer) clearTimeout(timer);
  timer = null;
}

async function poll() {
  stopPolling();
  await Promise.allSettled([refreshCluster(), refreshStats(), refreshEvents()]);
  if (!$("#app").hidden) timer = setTimeout(poll, POLL_MS);
}

async function refreshCluster() {
  let cluster, ready;
  try {
    [cluster, ready] = await Promise.all([json("/v1/cluster"), readiness()]);
  } catch (e) {
    $("#cluster-error").textContent = "Cannot read the cluster's state: " + e.message;
    return;
  }
  $("#cluster-error").textContent = "";
  renderCluster(cluster, ready);
  $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function readiness() {
  const resp = await fetch("/readyz", { cache: "no-store" });
  return resp.json();
}

function renderCluster(c, ready) {
  const nodes = new Map(c.nodes.map((n) => [n.name, n]));
  let degraded = false;
  const groups = c.groups.map((g) => {
    const details = new Map(g.member_details.map((m) => [m.name, m]));
    const names = [...new Set([...g.members, ...details.keys()])].sort();
    const rows = names.map((name) => {
      const n = nodes.get(name) || {};
      const d = details.get(name);
      const status = n.status || (d && d.live ? "alive" : "failed");
      const synced = d ? d.synced : n.in_sync;
      if (status !== "alive" || !synced) degraded = true;
      const role = name === g.primary ? "primary" : (n.role || "replica");
      const lag = d && g.commit >= d.match ? g.commit - d.match : null;
      return el("tr", { class: "member", dataset: { node: name, status } },
        el("td", {}, name),
        el("td", {}, role),
        el("td", { class: "status" }, status),
        el("td", {}, d && !d.live ? "not answering" : synced ? "synced" : "catching up"),
        el("td", { class: "num" }, lag === null ? "–" : String(lag)),
        el("td", { class: "num" }, d ? String(d.chunks) : "–"),
        el("td", {}, usage(n.used, n.cap)),
        el("td", { class: "error" }, (d && d.disk_error) || ""));
    });
    if (g.under_replicated > 0 || g.error || !g.primary) degraded = true;
    const free = g.free === null ? null : g.free;
    return el("div", { class: "group", dataset: { group: g.name } },
      el("h3", {}, "Group " + g.name, g.meta ? el("span", { class: "tag" }, "namespace") : null),
      el("div", { class: "facts" },
        el("span", {}, "primary ", el("b", {}, g.primary || "none")),
        el("span", {}, "term ", el("b", {}, String(g.term))),
        el("span", {}, "commit ", el("b", {}, String(g.commit))),
        el("span", {}, "chunks ", el("b", {}, String(g.chunks))),
        el("span", { class: "under" }, "under-replicated ", el("b", {}, String(g.under_replicated))),
        el("span", {}, "repaired ", el("b", {}, g.repair.copied + " copies, " + bytes(g.repair.copied_bytes))),
        el("span", {}, "used ", usage(g.used, free === null ? 0 : g.used + free))),
      g.error ? el("p", { class: "error" }, g.error) : null,
      el("table", {},
        el("thead", {}, el("tr", {}, ...["Member", "Role", "Gossip", "State", "Lag", "Chunks", "Disk", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
  });
  $("#groups").replaceChildren(...groups);
  $("#standbys").replaceChildren(...listOr(c.standbys.map((s) => {
    const n = nodes.get(s) || {};
    return el("li", { dataset: { node: s, status: n.status || "" } }, s + " ", el("span", { class: "why" }, n.status || ""));
  }), "none"));
  $("#routers").replaceChildren(...listOr(c.nodes.filter((n) => n.role === "router").map((n) =>
    el("li", { dataset: { node: n.name, status: n.status } }, n.name + " ", el("span", { class: "why" }, n.status + " " + n.addr))), "none"));
  $("#departed").replaceChildren(...listOr((c.departed || []).map((d) =>
    el("li", { dataset: { node: d.name } }, d.name + " (" + d.group + ") ",
      el("span", { class: "why" }, (d.since ? new Date(d.since).toLocaleString() + ": " : "") + d.why))), "none"));
  const badge = $("#health");
  const state = !ready.ready ? "unavailable" : degraded ? "degraded" : "ok";
  badge.dataset.state = state;
  badge.textContent = state;
  badge.title = (ready.checks || []).map((ch) => ch.name + ": " + (ch.ready ? "ready" : "not ready") + (ch.why ? " (" + ch.why + ")" : "")).join("\n");
}

function listOr(items, empty) {
  return items.length ? items : [el("li", { class: "why" }, empty)];
}

function usage(used, cap) {
  if (!cap) return el("span", {}, bytes(used));
  const frac = Math.min(1, used / cap);
  const fill = el("span");
  fill.style.width = (frac * 100).toFixed(1) + "%";
  return el("span", { title: bytes(used) + " of " + bytes(cap) },
    el("span", { class: "bar" + (frac > 0.9 ? " full" : "") }, fill), " " + (frac * 100).toFixed(0) + "%");
}

// --- traffic sparklines ---------------------------------------------------------------

async function refreshStats() {
  const st = await json("/v1/stats");
  if (!st.metered) {
    $("#traffic-note").textContent = "This router runs without metrics: no traffic to show.";
    return;
  }
  if (lastStats && st.requests < lastStats.requests) lastStats = null; // the router restarted: its counters begin again
  if (lastStats) {
    const dt = (new Date(st.time) - new Date(lastStats.time)) / 1000;
    if (dt > 0) {
      const dn = st.requests - lastStats.requests;
      push("rps", dn / dt, (v) => v.toFixed(0));
      push("lat", dn > 0 ? ((st.seconds - lastStats.seconds) / dn) * 1000 : 0, (v) => v.toFixed(2));
      push("in", (st.received_bytes - lastStats.received_bytes) / dt / 1e6, (v) => v.toFixed(1));
      push("out", (st.sent_bytes - lastStats.sent_bytes) / dt / 1e6, (v) => v.toFixed(1));
    }
  }
  lastStats = st;
  $("#traffic-note").textContent = st.requests + " file requests since the router started, " + st.errors + " failed with 5xx; " +
    st.in_flight + " requests in flight, this console's own included.";
}

function push(name, v, fmt) {
  const s = series[name];
  s.push(v);
  if (s.length > SPARK_POINTS) s.shift();
  $("#val-" + name).textContent = fmt(v);
  spark($("#spark-" + name), s);
}

function spark(canvas, values) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(...values, 1e-9);
  ctx.beginPath();
  const step = w / (SPARK_POINTS - 1);
  values.forEach((v, i) => {
    const x = w - (values.length - 1 - i) * step; // the newest at the right edge
    const y = h - 2 - (v / max) * (h - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = "#0969da";
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

// --- events -------------------------------------------------------------------

async function refreshEvents() {
  let r = await json("/v1/events?after=" + lastSeq);
  if (r.last < lastSeq) { // the router restarted and counts from 1 again
    lastSeq = 0;
    $("#events").replaceChildren();
    r = await json("/v1/events?after=0");
  }
  for (const ev of r.events) {
    lastSeq = ev.seq;
    const t = new Date(ev.time);
    $("#events").prepend(el("li", { dataset: { kind: ev.kind, node: ev.node || "" } },
      el("time", { datetime: ev.time }, t.toLocaleTimeString()),
      el("span", { class: "kind" }, ev.kind.replace("_", " ")),
      ev.message));
  }
  const list = $("#events");
  while (list.children.length > 300) list.lastChild.remove();
}

// --- files ---------------------------------------------------------------------

function fsURL(path, query) {
  const enc = path.split("/").map(encodeURIComponent).join("/");
  return "/v1/fs" + (enc.startsWith("/") ? enc : "/" + enc) + (query ? "?" + query : "");
}

function join(dir, name) {
  return (dir === "/" ? "" : dir) + "/" + name;
}

function fail(e) {
  $("#files-error").textContent = e.message;
}

async function listDir(dir) {
  let listing;
  try {
    listing = await json(fsURL(dir));
  } catch (e) {
    if (dir !== "/") return listDir("/");
    fail(e);
    return;
  }
  $("#files-error").textContent = "";
  cwd = listing.path || dir;
  sessionStorage.setItem("shoal-cwd", cwd);
  renderCrumbs();
  const rows = listing.entries.map((e) => entryRow(e));
  if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "5", class: "note" }, "This folder is empty.")));
  $("#listing tbody").replaceChildren(...rows);
}

function renderCrumbs() {
  const parts = cwd.split("/").filter(Boolean);
  const crumbs = [el("a", { onclick: () => listDir("/") }, "/")];
  parts.forEach((p, i) => {
    const to = "/" + parts.slice(0, i + 1).join("/");
    crumbs.push(el("a", { onclick: () => listDir(to) }, p), " / ");
  });
  $("#crumbs").replaceChildren(...crumbs);
}

function entryRow(e) {
  const path = join(cwd, e.name);
  const isDir = e.type === "dir";
  const name = isDir ? el("a", { class: "dir", onclick: () => listDir(path) }, e.name + "/") : el("span", {}, e.name);
  const nameCell = el("td", { class: "name" }, name);
  const del = el("button", { class: "delete danger", title: "delete" }, "Delete");
  del.addEventListener("click", () => {
    if (!del.classList.contains("confirm")) {
      del.classList.add("confirm");
      del.textContent = isDir ? "Delete all?" : "Sure?";
      setTimeout(() => { del.classList.remove("confirm"); del.textContent = "Delete"; }, 4000);
      return;
    }
    api(fsURL(path, isDir ? "recursive=1" : ""), { method: "DELETE" }).then(() => listDir(cwd), fail);
  });
  const rename = el("button", { class: "rename" }, "Rename");
  rename.addEventListener("click", () => {
    const input = el("input", { class: "rename-to", value: e.name });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") listDir(cwd);
      if (ev.key !== "Enter") return;
      const to = input.value.trim();
      if (!to || to === e.name) return listDir(cwd);
      api(fsURL(path, "op=rename&to=" + encodeURIComponent(join(cwd, to))), { method: "POST" }).then(() => listDir(cwd), fail);
    });
    nameCell.replaceChildren(input);
    input.focus();
    input.select();
  });
  const actions = [rename, del];
  if (!isDir) {
    actions.unshift(el("button", { class: "download", onclick: () => download(path, e.name).catch(fail) }, "Download"));
  }
  return el("tr", { class: "entry", dataset: { name: e.name, type: e.type, size: String(e.size) } },
    nameCell,
    el("td", { class: "num size", title: e.size + " bytes" }, isDir ? "" : bytes(e.size)),
    el("td", {}, new Date(e.mtime).toLocaleString()),
    el("td", {}, (e.mode & 0o7777).toString(8).padStart(4, "0")),
    el("td", { class: "actions" }, ...actions));
}

async function download(path, name) {
  const blob = await (await api(fsURL(path))).blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

$("#mkdir").addEventListener("click", () => {
  const name = $("#new-dir").value.trim();
  if (!name) return fail(new Error("Type the new folder's name first."));
  api(fsURL(join(cwd, name), "op=mkdir"), { method: "POST" }).then(() => { $("#new-dir").value = ""; listDir(cwd); }, fail);
});

// upload sends files one after another with a progress bar over all of
// them (XMLHttpRequest: fetch has no upload progress).
async function upload(files) {
  files = [...files];
  if (!files.length) return;
  const total = files.reduce((n, f) => n + f.size, 0) || 1;
  const bar = $("#upload-progress");
  bar.hidden = false;
  bar.value = 0;
  let done = 0;
  try {
    for (const [i, f] of files.entries()) {
      $("#upload-status").textContent = "uploading " + f.name + " (" + (i + 1) + " of " + files.length + ")";
      await put(join(cwd, f.name), f, (sent) => { bar.value = (done + sent) / total; });
      done += f.size;
    }
    $("#upload-status").textContent = "uploaded " + files.length + (files.length === 1 ? " file" : " files") + ", " + bytes(done);
    $("#files-error").textContent = "";
  } catch (e) {
    $("#upload-status").textContent = "";
    fail(e);
  }
  bar.value = 1;
  listDir(cwd);
}

function put(path, file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", fsURL(path));
    if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
    xhr.upload.onprogress = (ev) => progress(ev.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = xhr.status + " " + xhr.statusText;
      try { msg = JSON.parse(xhr.responseText).message || msg; } catch (e) { /* not JSON */ }
      if (xhr.status === 401) showLogin("The token was refused: " + msg);
      reject(new Error(path + ": " + msg));
    };
    xhr.onerror = () => reject(new Error(path + ": the upload could not reach the router"));
    xhr.send(file);
  });
}

$("#upload-input").addEventListener("change", (ev) => {
  upload(ev.target.files);
  ev.target.value = "";
});
const drop = $("#drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  upload(ev.dataTransfer.files);
});

start();

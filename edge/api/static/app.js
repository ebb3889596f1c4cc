// The admin page's only script: confirmations, the live view's track list, live events,
// the enrolment snapshot. No framework, no build step.
"use strict";

document.addEventListener("submit", (ev) => {
  const f = ev.target;
  if (f.classList.contains("confirm") && !window.confirm(f.dataset.confirm || "?")) ev.preventDefault();
});

function text(tag, s, cls) {
  const el = document.createElement(tag);
  el.textContent = s;
  if (cls) el.className = cls;
  return el;
}

function eventItem(e) {
  const li = document.createElement("li");
  li.append(text("span", (e.time || "").slice(11, 19), "time"), " ", text("b", e.type), " ",
            (e.user_id || "") + " " + (e.score !== undefined ? e.score : "") + " " + (e.action || e.reason || ""));
  return li;
}

const list = document.getElementById("event-list");
if (list && window.EventSource) {
  const es = new EventSource("/events");
  const add = (msg) => {
    const e = JSON.parse(msg.data);
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.prepend(eventItem(e));
    while (list.children.length > 50) list.lastChild.remove();
  };
  for (const type of ["decision", "unknown", "spoof", "verify", "prompt", "library_refresh"]) es.addEventListener(type, add);
}

const tracks = document.getElementById("live-tracks");
if (tracks) {
  const fps = document.getElementById("live-fps");
  const poll = async () => {
    try {
      const r = await fetch("/admin/live.json", {cache: "no-store"});
      if (r.ok) {
        const d = await r.json();
        tracks.replaceChildren();
        for (const t of d.tracks) {
          const li = text("li", "#" + t.track_id + " ", t.user_id ? "known" : (t.unknown ? "unknown" : "pending"));
          li.append(text("b", t.user_id || (t.unknown ? tracks.dataset.unknown : "…")));
          tracks.append(li);
        }
        if (!d.tracks.length) tracks.append(text("li", tracks.dataset.empty, "small"));
        if (d.camera && d.camera.fps !== undefined) fps.textContent = d.camera.fps + " fps · " + d.camera.state;
      }
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 500);
  };
  poll();
}

const snap = document.getElementById("snapshot");
if (snap) setInterval(() => { snap.src = "/admin/snapshot.jpg?t=" + Date.now(); }, +snap.dataset.refresh || 1000);

// The live view: the state of a running lab kept up to date from the
// server's events (/events: a snapshot, then one message per change),
// drawn with the report's functions (TestbedTree in tree.js). Talks to
// its own server only.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("live-data").textContent);
  const T = TestbedTree, idx = T.index(D.index), svg = document.querySelector("#picture svg");
  const destSel = document.getElementById("destination"), routerSel = document.getElementById("router");
  const st = {ribs: {}, sessions: {}, errors: {}, label: "now"};
  const status = document.getElementById("status");
  let drawPending = false;

  function fill(select, items) {
    for (const [value, label] of items) {
      const o = document.createElement("option");
      o.value = value; o.textContent = label; select.appendChild(o);
    }
  }
  const owner = {};
  for (const [as, prefixes] of Object.entries(D.prefixes)) for (const p of prefixes) owner[p] = as;
  fill(destSel, Object.keys(owner).sort((a, b) => (a.includes(":") - b.includes(":")) ||
    T.byAsn(idx)(owner[a], owner[b])).map(p => [p, owner[p] + " " + p]));
  fill(routerSel, T.routersInOrder(idx).map(r => [r, r]));

  // Apply one message from the server to the state (see testbed.live.model).
  function apply(m) {
    if (m.type === "snapshot") {
      st.ribs = m.ribs; st.sessions = m.sessions; st.errors = m.errors || {};
      document.querySelector("#log tbody").replaceChildren();
      for (const e of m.log) log(e, false);
      criteria(m.criteria || []);
    } else if (m.type === "router") {
      st.ribs[m.router] = m.rib; st.sessions[m.router] = m.sessions;
      if (m.error) st.errors[m.router] = m.error; else delete st.errors[m.router];
    } else if (m.type === "batch") {
      for (const x of m.messages) apply(x);
    } else if (m.type === "criteria") {
      criteria(m.criteria);
    } else if (m.type === "log") {
      log(m, true);
    } else if (m.type === "stopped") {
      status.textContent = "lab stopped"; status.className = "bad";
    }
  }

  function log(e, fresh) {
    const tr = document.createElement("tr");
    if (fresh) tr.className = "fresh";
    const took = e.seconds != null ? e.seconds.toFixed(3) + " s" : (e.error ? "" : "-");
    tr.append(T.text("td", e.t != null ? e.t.toFixed(2) + " s" : ""),
              T.text("td", (e.kind && e.kind !== (e.text || "").split(" ")[0] ? e.kind + ": " : "") + e.text),
              T.text("td", e.error ? e.error : took, e.error ? "bad" : ""),
              T.text("td", e.routers ? e.routers.length + ": " + e.routers.join(", ") : ""));
    const body = document.querySelector("#log tbody");
    body.insertBefore(tr, body.firstChild);
  }

  // An exercise's criteria, with their state at the last check.
  function criteria(list) {
    const body = document.querySelector("#criteria tbody");
    if (!body) return;
    body.replaceChildren();
    let checked = false;
    for (const c of list) {
      const tr = document.createElement("tr");
      const verdict = c.passed === true ? ["\u2713 passed", "ok"] : c.passed === false ? ["\u2717 failed", "bad"] :
        ["not checked", ""];
      if (c.passed !== null && c.passed !== undefined) checked = true;
      tr.append(T.text("td", c.description || c.name), T.text("td", verdict[0], verdict[1]),
                T.text("td", [c.seen, c.hint].filter(x => x).join(" \u2014 hint: ")));
      body.appendChild(tr);
    }
    if (checked) document.getElementById("criteria-caption").textContent =
      "as of the last 'testbed exercise check'";
  }

  function draw() {
    drawPending = false;
    const prefix = destSel.value, router = routerSel.value;
    const tree = T.mark(svg, idx, st, prefix, router);
    document.getElementById("tree-caption").textContent = "Best paths towards " + (owner[prefix] || "") +
      " " + prefix + " now: " + tree.length + " sessions carry them; faded ASes have no route.";
    document.getElementById("router-caption").textContent = router + " (now)";
    T.routerTables(document.querySelector("#rib tbody"), document.querySelector("#sessions tbody"),
                   st, router, prefix);
    T.matrices(idx, D.prefixes, st);
    if (document.getElementById("glass").open) glass();
  }
  function later() { if (!drawPending) { drawPending = true; requestAnimationFrame(draw); } }

  // The looking glass: the router's Adj-RIBs, asked when opened.
  function glass() {
    const router = routerSel.value;
    fetch("/api/router/" + encodeURIComponent(router), {credentials: "same-origin"})
      .then(r => r.json()).then(g => {
        const body = document.getElementById("glass-body");
        body.replaceChildren();
        if (g.error) { body.appendChild(T.text("p", g.error, "bad")); return; }
        for (const [title, tables] of [["received from", g.adj_rib_in], ["sent to", g.adj_rib_out]]) {
          for (const peer of Object.keys(tables).sort()) {
            const t = document.createElement("table");
            const cap = document.createElement("caption");
            cap.textContent = router + ": " + title + " " + peer;
            t.appendChild(cap);
            for (const [p, r] of Object.entries(tables[peer])) {
              const tr = document.createElement("tr");
              tr.append(T.text("td", p), T.text("td", r.path.join(" ") || "(own)"), T.text("td", r.next || r.nh || "-"));
              t.appendChild(tr);
            }
            body.appendChild(t);
          }
        }
      }).catch(err => console.warn("looking glass: " + err));
  }
  document.getElementById("glass").addEventListener("toggle", () => { if (document.getElementById("glass").open) glass(); });

  if (svg) {
    for (const g of Array.from(svg.querySelectorAll("g.as"))) {
      g.addEventListener("click", () => {
        const name = g.id.slice(3);
        if (idx.ases[name] && idx.ases[name].routers.length) { routerSel.value = idx.ases[name].routers[0]; draw(); }
      });
    }
  }
  const fit = document.getElementById("fit"), box = document.getElementById("picture");
  box.classList.toggle("fit", fit.checked);
  fit.addEventListener("change", () => box.classList.toggle("fit", fit.checked));
  destSel.addEventListener("change", draw);
  routerSel.addEventListener("change", draw);

  // The instructor's actions (only when the server was started with them).
  if (D.control) {
    fill(document.getElementById("session"), D.sessions.map(([a, b]) => [a + " " + b, a + " \u2014 " + b]));
    fill(document.getElementById("origin"), D.ases.map(a => [a, a]));
    const post = body => fetch("/api/action", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Testbed-Form": D.form}, body: JSON.stringify(body)})
      .then(r => r.json().then(j => { if (!r.ok) log({kind: "refused", text: body.op, error: j.error}, true); }));
    for (const op of ["depeer", "repeer"]) {
      document.getElementById(op).addEventListener("click", () => {
        const [a, b] = document.getElementById("session").value.split(" ");
        post({op, a, b});
      });
    }
    for (const op of ["announce", "withdraw"]) {
      document.getElementById(op).addEventListener("click", () => post({
        op, as: document.getElementById("origin").value, prefix: document.getElementById("prefix").value.trim()}));
    }
  }

  const events = new EventSource("/events");
  events.onopen = () => { status.textContent = "live"; status.className = "ok"; };
  events.onmessage = ev => { apply(JSON.parse(ev.data)); later(); };
  events.onerror = () => {
    if (status.textContent !== "lab stopped") { status.textContent = "reconnecting"; status.className = "bad"; }
  };
  draw();
})();

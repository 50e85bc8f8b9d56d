// The report's interactive parts: the routing tree on the picture, a
// router's Loc-RIB and sessions, the reachability matrices. Reads the data
// embedded in the page (#report-data); fetches nothing.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  // States after the first carry only the routes that changed.
  for (let i = 1; i < D.states.length; i++) {
    const s = D.states[i];
    if (!s.ribs_changed) continue;
    const ribs = {};
    for (const [router, rib] of Object.entries(D.states[i - 1].ribs)) ribs[router] = Object.assign({}, rib);
    for (const [router, diff] of Object.entries(s.ribs_changed)) {
      const rib = ribs[router] || (ribs[router] = {});
      for (const [prefix, route] of Object.entries(diff)) {
        if (route === null) delete rib[prefix]; else rib[prefix] = route;
      }
    }
    s.ribs = ribs;
  }
  const idx = Object.assign({ases: {}, routers: {}, sessions: {}, ixps: {}}, D.picture.index || {});
  const svg = document.querySelector("#picture svg");
  const stateSel = document.getElementById("state");
  const destSel = document.getElementById("destination");
  const routerSel = document.getElementById("router");
  const MARKS = ["tree", "dest", "noroute", "down", "chosen"];

  function sid(a, b) { return a < b ? "session-" + a + "-" + b : "session-" + b + "-" + a; }
  function byId(id) { return svg ? svg.getElementById(id) : null; }
  function text(tag, content, cls) {
    const e = document.createElement(tag);
    e.textContent = content;
    if (cls) e.className = cls;
    return e;
  }
  function fill(select, items) {
    for (const [value, label] of items) {
      const o = document.createElement("option");
      o.value = value; o.textContent = label; select.appendChild(o);
    }
  }

  fill(stateSel, D.states.map((s, i) => [i, "t=" + s.t.toFixed(2) + " s: " + s.label]));
  fill(destSel, D.destinations.map(d => [d.prefix, d.as + " " + d.prefix]));
  // ASes in ASN order (the embedded data's keys are sorted by name).
  const asn = name => (idx.ases[name] || {asn: 0}).asn;
  const byAsn = (a, b) => asn(a) - asn(b) || (a < b ? -1 : a > b ? 1 : 0);
  fill(routerSel, Object.keys(idx.routers).sort((a, b) => byAsn(idx.routers[a], idx.routers[b]) || (a < b ? -1 : 1))
    .map(r => [r, r]));

  function state() { return D.states[Number(stateSel.value)] || {ribs: {}, sessions: {}}; }

  // The routing tree towards the chosen prefix: every router's best route
  // marks the session to the router it leads to.
  function highlight() {
    if (!svg) return;
    for (const m of MARKS) for (const e of Array.from(svg.querySelectorAll("." + m))) e.classList.remove(m);
    const st = state(), prefix = destSel.value, tree = [];
    const reach = {};
    for (const router of Object.keys(st.ribs)) {
      const asName = idx.routers[router];
      const route = st.ribs[router][prefix];
      if (!route) { if (!(asName in reach)) reach[asName] = false; continue; }
      reach[asName] = true;
      if (route.path.length === 0) { const n = byId("as-" + asName); if (n) n.classList.add("dest"); continue; }
      for (const hop of [route.next, route.from]) {
        if (!hop) continue;
        // A session between ASes, or a link inside an AS towards its exit.
        const e = byId(sid(router, hop)) || byId("internal-" + router + "-" + hop) ||
          byId("internal-" + hop + "-" + router);
        if (e) { e.classList.add("tree"); tree.push(e.id); break; }
      }
    }
    for (const [asName, ok] of Object.entries(reach)) {
      const n = byId("as-" + asName);
      if (n && !ok) n.classList.add("noroute");
    }
    for (const [id, s] of Object.entries(idx.sessions)) {
      const seen = (st.sessions[s.a] || {})[s.b] || (st.sessions[s.b] || {})[s.a];
      const e = byId(id);
      if (e && seen && seen !== "established") e.classList.add("down");
    }
    const chosen = byId("as-" + idx.routers[routerSel.value]);
    if (chosen) chosen.classList.add("chosen");
    svg.setAttribute("data-tree", tree.sort().join(" "));
    svg.setAttribute("data-destination", prefix);
    svg.setAttribute("data-state", stateSel.value);
    const dest = D.destinations.find(d => d.prefix === prefix);
    document.getElementById("tree-caption").textContent =
      "Best paths towards " + (dest ? dest.as + " " : "") + prefix + " (" + st.label + "): " +
      tree.length + " sessions carry them; faded ASes have no route.";
    showRouter();
    matrices();
  }

  function showRouter() {
    const router = routerSel.value, st = state();
    const ribBody = document.querySelector("#rib tbody"), sesBody = document.querySelector("#sessions tbody");
    ribBody.replaceChildren(); sesBody.replaceChildren();
    document.getElementById("router-caption").textContent = router + " (" + st.label + ")";
    const rib = st.ribs[router] || {};
    for (const prefix of Object.keys(rib).sort()) {
      const r = rib[prefix], tr = document.createElement("tr");
      if (prefix === destSel.value) tr.className = "chosen";
      tr.append(text("td", prefix), text("td", r.path.join(" ") || "(own)"),
                text("td", r.next || r.nh || "-"), text("td", (r.communities || []).join(" ")));
      ribBody.appendChild(tr);
    }
    const sessions = st.sessions[router] || {};
    for (const peer of Object.keys(sessions).sort()) {
      const tr = document.createElement("tr");
      tr.append(text("td", peer), text("td", sessions[peer], sessions[peer] === "established" ? "ok" : "bad"));
      sesBody.appendChild(tr);
    }
    if (st.errors && st.errors[router]) ribBody.appendChild(text("tr", st.errors[router], "bad"));
  }

  // Reachability per family: does the source AS's first router hold a
  // route to the destination AS's first prefix of that family?
  function matrices() {
    const st = state(), ases = Object.keys(idx.ases).filter(a => idx.ases[a].routers.length).sort(byAsn);
    for (const family of [4, 6]) {
      const table = document.getElementById("matrix-" + family);
      if (!table) continue;
      table.replaceChildren();
      const dests = ases.filter(a => (D.picture.prefixes[a] || []).some(p => (p.includes(":") ? 6 : 4) === family));
      const head = document.createElement("tr");
      head.appendChild(text("th", "from \\ to"));
      for (const d of dests) head.appendChild(text("th", d));
      table.appendChild(head);
      for (const src of ases.filter(a => (D.picture.prefixes[a] || []).length)) {
        const tr = document.createElement("tr");
        tr.appendChild(text("th", src));
        const router = idx.ases[src].routers[0];
        for (const dst of dests) {
          const prefix = D.picture.prefixes[dst].find(p => (p.includes(":") ? 6 : 4) === family);
          let td;
          if (src === dst) td = text("td", "\u00b7", "self");
          else {
            const route = (st.ribs[router] || {})[prefix];
            td = route ? text("td", "\u2713", "yes") : text("td", "\u2717", "no");
            td.title = src + " \u2192 " + dst + " " + prefix + ": " +
              (route ? "AS path " + (route.path.join(" ") || "(own)") : "no route");
          }
          td.setAttribute("data-from", src); td.setAttribute("data-to", dst);
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
    }
  }

  if (svg) {
    for (const g of Array.from(svg.querySelectorAll("g.as"))) {
      g.addEventListener("click", () => {
        const name = g.id.slice(3);
        if (idx.ases[name] && idx.ases[name].routers.length) { routerSel.value = idx.ases[name].routers[0]; highlight(); }
      });
    }
  }
  for (const b of Array.from(document.querySelectorAll("button[data-state]"))) {
    b.addEventListener("click", () => {
      stateSel.value = b.getAttribute("data-state");
      highlight();
      document.getElementById("routes").scrollIntoView();
    });
  }
  // A large Internet is read at its own size (scrolled); a small one fits.
  const fit = document.getElementById("fit"), box = document.getElementById("picture");
  fit.checked = !svg || svg.width.baseVal.value <= 1.5 * box.clientWidth;
  box.classList.toggle("fit", fit.checked);
  fit.addEventListener("change", () => box.classList.toggle("fit", fit.checked));
  stateSel.addEventListener("change", highlight);
  destSel.addEventListener("change", highlight);
  routerSel.addEventListener("change", highlight);
  if (D.defaultDestination) destSel.value = D.defaultDestination;
  highlight();
})();

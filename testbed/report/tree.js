// Drawing shared by the report and the live view: the routing tree on the
// picture, a router's Loc-RIB and sessions, the reachability matrices.
// Each function takes a state ({ribs, sessions, errors, label}) and the
// picture's index; none fetches anything.
"use strict";
const TestbedTree = (function () {
  const MARKS = ["tree", "dest", "noroute", "down", "chosen"];
  function sid(a, b) { return a < b ? "session-" + a + "-" + b : "session-" + b + "-" + a; }
  function text(tag, content, cls) {
    const e = document.createElement(tag);
    e.textContent = content;
    if (cls) e.className = cls;
    return e;
  }
  function index(raw) { return Object.assign({ases: {}, routers: {}, sessions: {}, ixps: {}}, raw || {}); }
  // ASes in ASN order (names sort otherwise).
  function byAsn(idx) {
    const asn = name => (idx.ases[name] || {asn: 0}).asn;
    return (a, b) => asn(a) - asn(b) || (a < b ? -1 : a > b ? 1 : 0);
  }
  function routersInOrder(idx) {
    const cmp = byAsn(idx);
    return Object.keys(idx.routers).sort((a, b) => cmp(idx.routers[a], idx.routers[b]) || (a < b ? -1 : 1));
  }

  // The routing tree towards a prefix: every router's best route marks the
  // session to the router of its next hop, else to the router it was
  // learned from (a route server's routes); sessions not established are
  // marked down. Returns the ids of the tree's sessions, sorted.
  function mark(svg, idx, st, prefix, chosenRouter) {
    if (!svg) return [];
    const byId = id => svg.getElementById(id);
    for (const m of MARKS) for (const e of Array.from(svg.querySelectorAll("." + m))) e.classList.remove(m);
    const tree = [], reach = {};
    for (const router of Object.keys(st.ribs || {})) {
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
    const sessions = st.sessions || {};
    for (const [id, s] of Object.entries(idx.sessions)) {
      const seen = (sessions[s.a] || {})[s.b] || (sessions[s.b] || {})[s.a];
      const e = byId(id);
      if (e && seen && seen !== "established") e.classList.add("down");
    }
    const chosen = chosenRouter ? byId("as-" + idx.routers[chosenRouter]) : null;
    if (chosen) chosen.classList.add("chosen");
    tree.sort();
    svg.setAttribute("data-tree", tree.join(" "));
    svg.setAttribute("data-destination", prefix);
    return tree;
  }

  // A router's Loc-RIB and sessions into two table bodies.
  function routerTables(ribBody, sesBody, st, router, prefix) {
    ribBody.replaceChildren(); sesBody.replaceChildren();
    const rib = (st.ribs || {})[router] || {};
    for (const p of Object.keys(rib).sort()) {
      const r = rib[p], tr = document.createElement("tr");
      if (p === prefix) tr.className = "chosen";
      tr.append(text("td", p), text("td", r.path.join(" ") || "(own)"),
                text("td", r.next || r.nh || "-"), text("td", (r.communities || []).join(" ")));
      ribBody.appendChild(tr);
    }
    const sessions = (st.sessions || {})[router] || {};
    for (const peer of Object.keys(sessions).sort()) {
      const tr = document.createElement("tr");
      tr.append(text("td", peer), text("td", sessions[peer], sessions[peer] === "established" ? "ok" : "bad"));
      sesBody.appendChild(tr);
    }
    if (st.errors && st.errors[router]) ribBody.appendChild(text("tr", st.errors[router], "bad"));
  }

  // Reachability per family: does the source AS's first router hold a
  // route to the destination AS's first prefix of that family?
  function matrices(idx, prefixes, st) {
    const ases = Object.keys(idx.ases).filter(a => idx.ases[a].routers.length).sort(byAsn(idx));
    const fam = p => (p.includes(":") ? 6 : 4);
    for (const family of [4, 6]) {
      const table = document.getElementById("matrix-" + family);
      if (!table) continue;
      table.replaceChildren();
      const dests = ases.filter(a => (prefixes[a] || []).some(p => fam(p) === family));
      const head = document.createElement("tr");
      head.appendChild(text("th", "from \\ to"));
      for (const d of dests) head.appendChild(text("th", d));
      table.appendChild(head);
      for (const src of ases.filter(a => (prefixes[a] || []).length)) {
        const tr = document.createElement("tr");
        tr.appendChild(text("th", src));
        const router = idx.ases[src].routers[0];
        for (const dst of dests) {
          const prefix = prefixes[dst].find(p => fam(p) === family);
          let td;
          if (src === dst) td = text("td", "\u00b7", "self");
          else {
            const route = ((st.ribs || {})[router] || {})[prefix];
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

  return {sid, text, index, byAsn, routersInOrder, mark, routerTables, matrices};
})();

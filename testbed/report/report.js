// The report's interactive parts: the routing tree on the picture, a
// router's Loc-RIB and sessions, the reachability matrices (drawn by
// tree.js, shared with the live view). Reads the data embedded in the page
// (#report-data); fetches nothing.
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
  const T = TestbedTree;
  const idx = T.index(D.picture.index);
  const svg = document.querySelector("#picture svg");
  const stateSel = document.getElementById("state");
  const destSel = document.getElementById("destination");
  const routerSel = document.getElementById("router");

  function fill(select, items) {
    for (const [value, label] of items) {
      const o = document.createElement("option");
      o.value = value; o.textContent = label; select.appendChild(o);
    }
  }

  fill(stateSel, D.states.map((s, i) => [i, "t=" + s.t.toFixed(2) + " s: " + s.label]));
  fill(destSel, D.destinations.map(d => [d.prefix, d.as + " " + d.prefix]));
  fill(routerSel, T.routersInOrder(idx).map(r => [r, r]));

  function state() { return D.states[Number(stateSel.value)] || {ribs: {}, sessions: {}}; }

  function highlight() {
    const st = state(), prefix = destSel.value;
    const tree = T.mark(svg, idx, st, prefix, routerSel.value);
    if (svg) svg.setAttribute("data-state", stateSel.value);
    const dest = D.destinations.find(d => d.prefix === prefix);
    document.getElementById("tree-caption").textContent =
      "Best paths towards " + (dest ? dest.as + " " : "") + prefix + " (" + st.label + "): " +
      tree.length + " sessions carry them; faded ASes have no route.";
    document.getElementById("router-caption").textContent = routerSel.value + " (" + st.label + ")";
    T.routerTables(document.querySelector("#rib tbody"), document.querySelector("#sessions tbody"),
                   st, routerSel.value, prefix);
    T.matrices(idx, D.picture.prefixes, st);
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

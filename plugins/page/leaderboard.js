(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("medbench-data").textContent);
  function num(v) { if (v === undefined || v === null || v === "") return null; var x = parseFloat(v); return isNaN(x) ? null : x; }
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function fmt(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(3); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function show(v) { return v === null || v === undefined ? "–" : (typeof v === "object" ? JSON.stringify(v) : String(v)); }

  /* sorting: any table.sortable; numbers best-first on the first click (data-first-dir), missing values last */
  each(document.querySelectorAll("table.sortable"), function (table) {
    var headers = table.tHead.rows[0].cells;
    each(headers, function (th, index) {
      if (!th.dataset.sortType) return;
      th.tabIndex = 0;
      var go = function () { sortBy(table, th, index); };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
  });
  function sortBy(table, th, index) {
    var first = th.dataset.firstDir || "descending";
    var dir = th.getAttribute("aria-sort") === first ? (first === "descending" ? "ascending" : "descending") : first;
    each(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var text = th.dataset.sortType === "text";
    var tiered = th.dataset.tiered === "1";
    rows.sort(function (a, b) {
      var va = a.cells[index].dataset.value, vb = b.cells[index].dataset.value;
      if (tiered) {  /* aggregates: rows scored on more tasks first, whatever the direction */
        var ta = num(a.cells[index].dataset.tier), tb = num(b.cells[index].dataset.tier);
        if (ta !== tb) return (ta === null ? 1e9 : ta) - (tb === null ? 1e9 : tb);
      }
      if (text) {
        va = (va || "").toLowerCase(); vb = (vb || "").toLowerCase();
        var c = va < vb ? -1 : va > vb ? 1 : 0;
        return dir === "ascending" ? c : -c;
      }
      va = num(va); vb = num(vb);
      if (va === null && vb === null) return 0;
      if (va === null) return 1;
      if (vb === null) return -1;
      return dir === "ascending" ? va - vb : vb - va;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  /* filtering: checkpoint text, significant rows only, task columns on/off */
  var board = document.getElementById("leaderboard");
  var filter = document.getElementById("filter");
  var onlySig = document.getElementById("only-sig");
  function applyFilter() {
    var q = filter.value.trim().toLowerCase();
    each(board.tBodies[0].rows, function (r) {
      var ok = !q || (r.dataset.search || "").indexOf(q) >= 0;
      if (ok && onlySig && onlySig.checked) ok = r.classList.contains("baseline") || r.querySelector("td.better, td.worse") !== null;
      r.hidden = !ok;
    });
  }
  filter.addEventListener("input", applyFilter);
  if (onlySig) onlySig.addEventListener("change", applyFilter);  /* absent without a baseline */
  each(document.querySelectorAll("input[data-toggle-col]"), function (box) {
    box.addEventListener("change", function () {
      var col = box.dataset.toggleCol;
      each(document.querySelectorAll("[data-col]"), function (node) {
        if (node.dataset.col === col) node.classList.toggle("col-hidden", !box.checked);
      });
    });
  });

  /* drill-down: a cell's per-item predictions and its provenance */
  var dialog = document.getElementById("drilldown");
  var current = null;
  function openCell(id) {
    var cell = DATA.cells[id];
    if (!cell) return;
    current = cell;
    document.getElementById("dd-title").textContent = cell.row + " — " + cell.column;
    var summary = cell.metric + " = " + fmt(cell.score);
    if (cell.ci && cell.ci[0] !== null) summary += "  " + DATA.confidence_pct + "% CI [" + fmt(cell.ci[0]) + ", " + fmt(cell.ci[1]) + "]" + (cell.ci_degenerate ? "†" : "") + " (" + cell.ci_method + ")";
    summary += "  n = " + cell.n + "  · weights " + cell.weights.slice(0, 12);
    var c = cell.comparison;
    if (c && c.p !== null) {
      summary += "\nvs baseline " + cell.baseline + ": Δ = " + (c.delta >= 0 ? "+" : "") + fmt(c.delta) + " on " + plural(c.n_paired, "paired item") + ", " + (c.test === "mcnemar-exact" ? "McNemar exact (b=" + c.b + ", c=" + c.c + ")" : "paired permutation test") +
        ", p = " + fmt(c.p) + ", BH q = " + fmt(c.q) + (c.significant ? " — significant" : " — not significant");
    } else if (c && c.note) { summary += "\nvs baseline: " + c.note; }
    if (cell.ci_degenerate) summary += "\n" + DATA.degenerate_note;
    document.getElementById("dd-summary").textContent = summary;
    document.getElementById("dd-count").textContent = cell.total > cell.samples.length ?
      "showing the first " + cell.samples.length + " of " + plural(cell.total, "item") + " (all are in samples.jsonl)" :
      plural(cell.total, "item");
    document.getElementById("dd-prov").textContent = JSON.stringify(cell.provenance, null, 2);
    document.getElementById("dd-which").value = "all";
    /* "differs from the baseline" means nothing for a cell with no baseline predictions */
    document.querySelector('#dd-which option[value="changed"]').hidden = !cell.samples.some(function (s) { return s.bp !== undefined; });
    fillSamples();
    if (typeof dialog.showModal === "function") { if (!dialog.open) dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }
  function fillSamples() {
    var cell = current, which = document.getElementById("dd-which").value;
    var table = document.getElementById("dd-samples");
    var head = table.tHead.rows[0];
    while (head.firstChild) head.removeChild(head.firstChild);
    var cols = ["doc_id", "gold", "prediction", cell.item_metric];
    var hasBase = cell.samples.some(function (s) { return s.bp !== undefined; });
    if (hasBase) cols.push("baseline prediction");
    var hasResp = cell.samples.some(function (s) { return s.r !== undefined; });
    if (hasResp) cols.push("generated");
    cols.push("log-likelihoods", "prompt");
    cols.forEach(function (name) { head.appendChild(el("th", name)); });
    var body = table.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    cell.samples.forEach(function (s) {
      var right = s.v === null ? null : s.v >= 1;
      if (which === "right" && right !== true) return;
      if (which === "wrong" && right !== false) return;
      if (which === "changed" && (!hasBase || show(s.bp) === show(s.pred))) return;
      var tr = document.createElement("tr");
      tr.appendChild(el("td", show(s.id)));
      tr.appendChild(el("td", show(s.gold)));
      tr.appendChild(el("td", show(s.pred)));
      tr.appendChild(el("td", s.v === null ? "–" : (s.v === 1 ? "✓ 1" : s.v === 0 ? "✗ 0" : fmt(s.v)), right === null ? "" : right ? "ok" : "bad"));
      if (hasBase) tr.appendChild(el("td", show(s.bp)));
      if (hasResp) tr.appendChild(el("td", s.r === undefined ? "" : s.r));
      tr.appendChild(el("td", s.ll ? s.ll.join(", ") : "–"));
      /* chat-template rows: the question first, the whole wrapped prompt (system preamble, turn markers) folded */
      var prompt = DATA.prompts[s.p] || "";
      var question = s.q === undefined ? null : (DATA.prompts[s.q] || "");
      var shown = question === null ? prompt : question;
      var td = document.createElement("td");
      var details = document.createElement("details");
      details.appendChild(el("summary", shown.length > 90 ? shown.slice(0, 90).replace(/\s+/g, " ") + "…" : shown.replace(/\s+/g, " ")));
      details.appendChild(el("pre", shown));
      if (question !== null) {
        var wrapper = el("details", null, "chat-wrapper");
        wrapper.appendChild(el("summary", "whole prompt as the chat template wrapped it"));
        wrapper.appendChild(el("pre", prompt));
        details.appendChild(wrapper);
      }
      td.appendChild(details);
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }
  document.getElementById("dd-which").addEventListener("change", fillSamples);
  document.getElementById("dd-close").addEventListener("click", function () { if (dialog.close) dialog.close(); else dialog.removeAttribute("open"); });
  board.addEventListener("click", function (e) {
    var td = e.target.closest("td[data-cell]");
    if (td) openCell(td.dataset.cell);
  });
  board.addEventListener("keydown", function (e) {
    var td = e.target.closest ? e.target.closest("td[data-cell]") : null;
    if (td && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); openCell(td.dataset.cell); }
  });
  window.medbenchLeaderboard = { data: DATA, open: openCell };
})();

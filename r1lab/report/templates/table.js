// Filtering and sorting for the completions tables: plain DOM, no library, nothing fetched.
(function () {
  "use strict";

  // One condition of a number filter: "12", "=12", ">0.5", "<=0", "10..20" (inclusive).
  function condition(text) {
    var range = text.match(/^(.+?)\s*\.\.\s*(.+)$/);
    if (range) {
      var low = Number(range[1]), high = Number(range[2]);
      if (isNaN(low) || isNaN(high)) return null;
      return function (v) { return v >= low && v <= high; };
    }
    var compare = text.match(/^(>=|<=|>|<|==|=)?\s*(\S+)$/);
    if (!compare) return null;
    var x = Number(compare[2]);
    if (compare[2] === "" || isNaN(x)) return null;
    switch (compare[1]) {
      case ">": return function (v) { return v > x; };
      case ">=": return function (v) { return v >= x; };
      case "<": return function (v) { return v < x; };
      case "<=": return function (v) { return v <= x; };
      default: return function (v) { return Math.abs(v - x) <= 1e-9 * Math.max(1, Math.abs(x)); };
    }
  }

  // A filter's test for one cell, or null when the text does not parse (the input turns red).
  // Number filters take comma-separated conditions, any of which may hold; text filters a substring.
  function cellTest(kind, text) {
    text = text.trim();
    if (text === "") return function () { return true; };
    if (kind === "text") {
      var needle = text.toLowerCase();
      return function (cell) { return cell.textContent.toLowerCase().indexOf(needle) !== -1; };
    }
    var tests = text.split(",").map(function (part) { return part.trim(); })
      .filter(function (part) { return part !== ""; }).map(condition);
    if (tests.length === 0 || tests.indexOf(null) !== -1) return null;
    return function (cell) {
      var raw = cell.getAttribute("data-value");
      if (raw === null || raw === "") return false;
      var v = Number(raw);
      return tests.some(function (test) { return test(v); });
    };
  }

  function applyFilters(table, inputs, status) {
    var active = [];
    inputs.forEach(function (input) {
      var test = cellTest(input.getAttribute("data-kind"), input.value);
      input.classList.toggle("invalid", test === null);
      if (test !== null && input.value.trim() !== "") active.push([Number(input.getAttribute("data-column")), test]);
    });
    var rows = table.tBodies[0].rows, shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var cells = rows[i].cells;
      var keep = active.every(function (filter) { return filter[1](cells[filter[0]]); });
      rows[i].hidden = !keep;
      if (keep) shown++;
    }
    if (status) status.textContent = shown === rows.length ? rows.length + " rows" : shown + " of " + rows.length + " rows";
  }

  // Sort key of a cell: its number for number columns (missing values last), its text otherwise.
  function sortKey(cell, numeric) {
    if (!numeric) return cell.textContent.toLowerCase();
    var raw = cell.getAttribute("data-value");
    return raw === null || raw === "" ? null : Number(raw);
  }

  function sortBy(table, index, header) {
    var numeric = header.getAttribute("data-kind") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, position) {
      return [sortKey(row.cells[index], numeric), position, row];
    });
    keyed.sort(function (a, b) {
      if (a[0] === b[0]) return a[1] - b[1];
      if (a[0] === null) return 1;
      if (b[0] === null) return -1;
      var order = a[0] < b[0] ? -1 : 1;
      return ascending ? order : -order;
    });
    keyed.forEach(function (entry) { body.appendChild(entry[2]); });
  }

  document.querySelectorAll("table[data-filterable]").forEach(function (table) {
    var inputs = Array.prototype.slice.call(table.querySelectorAll("tr.filters input"));
    var status = document.querySelector('.shown[data-for="' + table.id + '"]');
    inputs.forEach(function (input) {
      input.addEventListener("input", function () { applyFilters(table, inputs, status); });
    });
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, index) {
      var button = header.querySelector("button.sort");
      if (button) button.addEventListener("click", function () { sortBy(table, index, header); });
    });
  });
})();

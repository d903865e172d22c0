/* The Models page's grid (dashboard/view_parts/model_table.py). dash-ag-grid calls these by name
   from {"function": ...} props, parsed by its own interpreter: no eval, so the page's CSP holds. */
(function () {
  const functions = window.dashAgGridFunctions = window.dashAgGridFunctions || {};
  // A fraction in [0, 1] as a percentage with one decimal; "n/a" when there is none.
  functions.repscopePercent = function (value) {
    return value === null || value === undefined ? 'n/a' : (100 * value).toFixed(1) + '%';
  };
  // The same number in percent as shown (one decimal), for the column filters: "equals 10" keeps
  // the rows shown as 10.0% (stored fractions are float32, 0.1 is 0.1000000015); null stays null.
  functions.repscopeHundred = function (value) {
    return value === null || value === undefined ? null : Math.round(1000 * value) / 10;
  };

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.repscopeGrid = {
    // The search box's text as the grid's quick filter (every column, as the user types).
    quickFilter: function (text, options) {
      return Object.assign({}, options, {quickFilterText: text || ''});
    },
  };
})();

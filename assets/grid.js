/* The Models page's grid (dashboard/view_parts/model_table.py). dash-ag-grid calls these by name
   from {"function": ...} props, parsed by its own interpreter: no eval, so the page's CSP holds. */
(function () {
  const functions = window.dashAgGridFunctions = window.dashAgGridFunctions || {};
  // A fraction in [0, 1] as a percentage with one decimal; "n/a" when there is none.
  functions.repscopePercent = function (value) {
    return value === null || value === undefined ? 'n/a' : (100 * value).toFixed(1) + '%';
  };
  // The same number in percent, for the column filters (null stays null: no number to compare).
  functions.repscopeHundred = function (value) {
    return value === null || value === undefined ? null : 100 * value;
  };

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.repscopeGrid = {
    // The search box's text as the grid's quick filter (every column, as the user types).
    quickFilter: function (text, options) {
      return Object.assign({}, options, {quickFilterText: text || ''});
    },
  };
})();

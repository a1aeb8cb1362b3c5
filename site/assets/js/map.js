/* diffusion-atlas trajectory map: highlights the path of the variant chosen in the variants widget.
 * Step highlighting, hover and click are follow.js's ([data-column] circles, [data-set-step][data-hover]).
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function select(fig, id) {
    fig.querySelectorAll("[data-path]").forEach(function (el) {
      el.classList.toggle("atlas-selected", el.dataset.path === id);
    });
  }

  document.addEventListener("atlas:variant", function (e) {
    var d = e.detail || {};
    document.querySelectorAll("[data-atlas=map][data-follow-group='" + d.group + "']").forEach(function (fig) {
      var id = "s" + d.seed + "-g" + d.guidance;
      select(fig, id === fig.dataset.own ? "main" : id);
    });
  });

  A.ready(function (root) {
    root.querySelectorAll("[data-atlas=map]").forEach(function (fig) { select(fig, "main"); });
  });
})();

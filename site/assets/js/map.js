/* diffusion-atlas trajectory map: highlights the path of the variant chosen in the variants widget.
 * Step highlighting, hover and click are follow.js's ([data-column] circles, [data-set-step][data-hover]).
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function select(fig, id) {
    fig.querySelectorAll("[data-path]").forEach(function (el) {
      var on = el.dataset.path === id;
      el.classList.toggle("atlas-selected", on);
      // a chosen variant's path is drawn last, over the others (its legend entry stays where it is)
      if (on && el.tagName.toLowerCase() === "g" && el.dataset.path !== "main") el.parentNode.appendChild(el);
    });
  }

  function show(fig, seed, guidance) {
    var id = "s" + seed + "-g" + guidance;
    select(fig, id === fig.dataset.own ? "main" : id);
  }

  document.addEventListener("atlas:variant", function (e) {
    var d = e.detail || {};
    document.querySelectorAll("[data-atlas=map][data-follow-group='" + d.group + "']").forEach(function (fig) {
      show(fig, d.seed, d.guidance);
    });
  });

  A.ready(function (root) {
    root.querySelectorAll("[data-atlas=map]").forEach(function (fig) {
      // whichever script mounted first: start from the variants widget's current choice, if there is one
      var variants = root.querySelector("[data-atlas=variants][data-follow-group='" + fig.dataset.followGroup + "']");
      if (variants) show(fig, Number(variants.dataset.seed), Number(variants.dataset.guidance));
      else select(fig, "main");
    });
  });
})();

/* diffusion-atlas before/after widget (SDEdit, inpainting): cross-fade from the input to the result.
 *
 * Markup: <figure data-atlas="before-after"> with a [data-role=stage] holding two images (the result is
 * [data-role=after]), a toggle button [data-action=toggle] (aria-pressed pins the result) and, for SDEdit,
 * level buttons [data-level=i][data-src=url] that pick which run's result and trajectory ([data-run=i]) show
 * (generator/render/templates/course.html.j2). Hover, tap (pointer) and keyboard focus show the result while
 * they last; the toggle keeps it shown.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var stage = fig.querySelector("[data-role=stage]");
    var after = fig.querySelector("[data-role=after]");
    var toggle = fig.querySelector("[data-action=toggle]");
    var levels = Array.prototype.slice.call(fig.querySelectorAll("[data-level]"));
    var runs = Array.prototype.slice.call(fig.querySelectorAll("[data-run]"));

    function update(pinned, hovering) {
      var show = pinned || hovering;
      stage.classList.toggle("is-after", show);
      fig.dataset.showing = show ? "after" : "before";
      toggle.textContent = pinned ? "Show input" : "Show result";
    }

    function pick(level) {
      levels.forEach(function (b) { b.setAttribute("aria-pressed", b === level ? "true" : "false"); });
      after.src = level.dataset.src;
      runs.forEach(function (r) { r.hidden = r.dataset.run !== level.dataset.level; });
      fig.dataset.level = level.dataset.level;
    }

    levels.forEach(function (b) { b.addEventListener("click", function () { pick(b); }); });
    var hover = A.pinnable(stage, toggle, update);
    stage.addEventListener("focus", function () { hover(true); }); // keyboard focus shows the result too
    stage.addEventListener("blur", function () { hover(false); });
  }

  A.widget("before-after", mount);
})();

/* diffusion-atlas visual-anagram widget: turn the image upside down on hover, tap, focus or the button.
 *
 * Markup: <figure data-atlas="anagram" data-upright="prompt 1" data-flipped="prompt 2"> with a
 * [data-role=stage] image, a button [data-action=flip] (aria-pressed keeps it turned) and an output
 * [data-role=course-label] naming the prompt the image reads as now (generator/render/templates/course.html.j2).
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var stage = fig.querySelector("[data-role=stage]");
    var button = fig.querySelector("[data-action=flip]");
    var out = fig.querySelector("[data-role=course-label]");

    function update(pressed, hovering) {
      var turned = pressed !== hovering; // hovering a pinned image turns it back
      stage.classList.toggle("is-flipped", turned);
      fig.dataset.turned = turned ? "1" : "0";
      out.textContent = turned ? "upside down: “" + fig.dataset.flipped + "”" : "upright: “" + fig.dataset.upright + "”";
    }

    A.pinnable(stage, button, update);
  }

  A.widget("anagram", mount);
})();

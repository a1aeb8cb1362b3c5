/* diffusion-atlas hybrid-image widget: a viewing-distance control that shrinks the image as if seen from afar.
 *
 * Markup: <figure data-atlas="hybrid" data-far="prompt 1" data-near="prompt 2"> with an image
 * [data-role=image], buttons [data-scale=f] (aria-pressed, one at a time) and an output [data-role=course-label]
 * (generator/render/templates/course.html.j2). Arrow keys on a button move to the next distance.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function mount(fig) {
    var image = fig.querySelector("[data-role=image]");
    var out = fig.querySelector("[data-role=course-label]");
    var buttons = Array.prototype.slice.call(fig.querySelectorAll("[data-scale]"));

    function pick(button) {
      var scale = parseFloat(button.dataset.scale);
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
      image.style.width = scale * 100 + "%";
      fig.dataset.scale = String(scale);
      out.textContent = scale >= 0.99 ? "up close: “" + fig.dataset.near + "”" : "from afar: “" + fig.dataset.far + "”";
    }

    buttons.forEach(function (b, i) {
      b.addEventListener("click", function () { pick(b); });
      b.addEventListener("keydown", function (e) {
        var to = { ArrowRight: i + 1, ArrowLeft: i - 1 }[e.key];
        if (to === undefined) return;
        e.preventDefault();
        var next = buttons[A.clamp(to, 0, buttons.length - 1)];
        next.focus();
        pick(next);
      });
    });
    pick(buttons.filter(function (b) { return b.getAttribute("aria-pressed") === "true"; })[0] || buttons[0]);
  }

  A.widget("hybrid", mount);
})();

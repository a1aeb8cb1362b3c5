/* diffusion-atlas epoch animations (MNIST training chapter): each panel plays its sampling run.
 *
 * Markup: <figure data-atlas="epochs"> with panels [data-role=epoch] (data-frame-steps: the sampler step of
 * every frame, data-steps), each holding a sprite [data-role=stage] (frame k = every sample's x_t at one
 * step; the last frame, the finished samples, shows at rest), a loop button [data-action=play] (aria-pressed)
 * and a label [data-role=label]; one [data-action=play-all] button (generator/render/templates/training.html.j2).
 * Hover (mouse), keyboard focus or a tap plays a panel once from noise and holds the result; the panel's
 * button (or "Play all epochs") loops it until pressed again.
 */
(function () {
  "use strict";
  var A = window.Atlas;
  var FRAME_MS = 90, HOLD_MS = 900;

  function mountPanel(panel) {
    var stage = panel.querySelector("[data-role=stage]");
    var button = panel.querySelector("[data-action=play]");
    var label = panel.querySelector("[data-role=label]");
    var spec = A.sprite(stage);
    var steps = (panel.dataset.frameSteps || "").split(",").map(Number);
    var total = panel.dataset.steps || String(steps[steps.length - 1]);
    var frame = spec.count - 1, timer = 0, active = 0; // active: hover/focus/tap requests playing once

    function show(i) {
      frame = A.clamp(i, 0, spec.count - 1);
      A.drawSprite(stage, spec, frame);
      var step = steps[frame] !== undefined ? steps[frame] : frame;
      label.textContent = "step " + step + " / " + total;
    }

    function looping() { return button.getAttribute("aria-pressed") === "true"; }

    function tick() {
      if (frame < spec.count - 1) {
        show(frame + 1);
        timer = setTimeout(tick, FRAME_MS);
      } else if (looping() || active > 0) {
        timer = setTimeout(function () { show(0); timer = setTimeout(tick, FRAME_MS); }, HOLD_MS);
      } else {
        timer = 0;
        panel.dataset.playing = "false";
      }
    }

    function play() {
      if (timer) return;
      panel.dataset.playing = "true";
      show(0);
      timer = setTimeout(tick, FRAME_MS);
    }

    function stop() {
      clearTimeout(timer);
      timer = 0;
      panel.dataset.playing = "false";
      show(spec.count - 1);
    }

    function settle() { if (!looping() && active <= 0) stop(); }

    function setLoop(on) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
      if (on) play(); else settle();
    }

    button.addEventListener("click", function () { setLoop(!looping()); });
    stage.addEventListener("pointerenter", function (e) { if (e.pointerType === "mouse") { active = 1; play(); } });
    stage.addEventListener("pointerleave", function (e) { if (e.pointerType === "mouse") { active = 0; settle(); } });
    stage.addEventListener("pointerup", function (e) { if (e.pointerType !== "mouse") setLoop(!looping()); });
    stage.addEventListener("focus", function () { active = 1; play(); });
    stage.addEventListener("blur", function () { active = 0; settle(); });
    stage.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); setLoop(!looping()); }
    });
    show(frame);
    return { setLoop: setLoop, looping: looping };
  }

  function mount(fig) {
    var panels = Array.prototype.map.call(fig.querySelectorAll("[data-role=epoch]"), mountPanel);
    var all = fig.querySelector("[data-action=play-all]");
    if (!all) return;
    all.addEventListener("click", function () {
      var on = all.getAttribute("aria-pressed") !== "true";
      all.setAttribute("aria-pressed", on ? "true" : "false");
      panels.forEach(function (p) { p.setLoop(false); });
      if (on) panels.forEach(function (p) { p.setLoop(true); }); // restart together, in step
    });
  }

  A.widget("epochs", mount);
})();

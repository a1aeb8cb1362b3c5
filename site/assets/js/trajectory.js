/* diffusion-atlas trajectory widget: x_t and predicted x0 side by side, scrubbed by a timeline strip.
 *
 * Markup: <figure data-atlas="trajectory" data-group="traj-<id>" data-steps="N" data-timesteps="t0,t1,...">
 * with two .atlas-sprite viewports, a [data-role=strip] slider holding [data-role=cells], buttons
 * [data-action=first|prev|play|next|last] and an output [data-role=label] (generator/render/templates/
 * trajectory.html.j2). The step lives on the Atlas step bus under the figure's group, so other widgets
 * can follow or drive it; the URL hash (#traj-<id>=12) restores and records it.
 */
(function () {
  "use strict";
  var A = window.Atlas;
  var FRAME_MS = 160; // playback speed
  var MAX_CELLS = 64; // strip thumbnails; longer trajectories show every k-th frame

  function label(steps, timesteps, i) {
    if (i >= steps) return { text: "step " + steps + " / " + steps + " · final image", value: "step " + steps + " of " + steps + ", final image" };
    var t = timesteps[i] !== undefined && timesteps[i] !== "" ? timesteps[i] : "?";
    return { text: "step " + i + " / " + steps + " · t = " + t, value: "step " + i + " of " + steps + ", t = " + t };
  }

  function mount(fig) {
    var steps = parseInt(fig.dataset.steps, 10);
    var last = steps; // frames 0..steps
    var group = fig.dataset.group;
    var timesteps = (fig.dataset.timesteps || "").split(",");
    var sprites = Array.prototype.map.call(fig.querySelectorAll(".atlas-sprite"), function (el) {
      return { el: el, spec: A.sprite(el) };
    });
    var strip = fig.querySelector("[data-role=strip]");
    var cellsEl = fig.querySelector("[data-role=cells]");
    var playhead = fig.querySelector("[data-role=playhead]");
    var out = fig.querySelector("[data-role=label]");
    var playBtn = fig.querySelector("[data-action=play]");
    var timer = 0, dragging = false, current = 0;

    // Strip cells: tiny frames of the x_t sheet (same image, no extra request).
    var nCells = Math.min(last + 1, MAX_CELLS);
    var cells = [];
    var stripSpec = sprites[0].spec;
    cellsEl.style.setProperty("--atlas-cells", String(nCells));
    cellsEl.style.setProperty("--atlas-aspect", stripSpec.frameWidth + " / " + stripSpec.frameHeight);
    for (var j = 0; j < nCells; j++) {
      var cell = document.createElement("div");
      cell.className = "atlas-strip-cell";
      A.drawSprite(cell, stripSpec, Math.floor(((j + 0.5) * (last + 1)) / nCells));
      cellsEl.insertBefore(cell, playhead);
      cells.push(cell);
    }

    function render(i) {
      current = i;
      sprites.forEach(function (s) { A.drawSprite(s.el, s.spec, i); A.labelStep(s.el, i); });
      var l = label(steps, timesteps, i);
      out.textContent = l.text;
      strip.setAttribute("aria-valuenow", String(i));
      strip.setAttribute("aria-valuetext", l.value);
      playhead.style.left = (i / (last + 1)) * 100 + "%";
      playhead.style.width = 100 / (last + 1) + "%";
      fig.dataset.step = String(i);
    }

    function go(i, source) { A.setStep(group, A.clamp(i, 0, last), source || "trajectory"); }

    A.onStep(group, function (i, source) {
      render(A.clamp(i, 0, last));
      if (source !== "init" && source !== "hash") A.hashSet(group, i === 0 ? null : i);
    });

    function stop() {
      clearInterval(timer);
      timer = 0;
      playBtn.setAttribute("aria-pressed", "false");
    }
    function play() {
      if (current >= last) go(0);
      playBtn.setAttribute("aria-pressed", "true");
      timer = setInterval(function () {
        if (!fig.isConnected || current >= last) { stop(); return; }
        go(current + 1, "play");
      }, FRAME_MS);
    }

    function stepAt(clientX) {
      var r = cellsEl.getBoundingClientRect();
      if (r.width <= 0) return current;
      return A.clamp(Math.floor(((clientX - r.left) / r.width) * (last + 1)), 0, last);
    }

    strip.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      stop();
      dragging = true;
      try { strip.setPointerCapture(e.pointerId); } catch (err) { /* pointer already gone */ }
      go(stepAt(e.clientX), "drag");
    });
    strip.addEventListener("pointermove", function (e) {
      if (dragging || e.pointerType === "mouse") {
        if (!dragging && timer) return; // a resting mouse does not fight playback
        go(stepAt(e.clientX), dragging ? "drag" : "hover");
      }
    });
    function endDrag() { dragging = false; }
    strip.addEventListener("pointerup", endDrag);
    strip.addEventListener("pointercancel", endDrag);
    strip.addEventListener("lostpointercapture", endDrag);

    strip.addEventListener("keydown", function (e) {
      var page = Math.max(1, Math.round(last / 10));
      var to = {
        ArrowLeft: current - 1, ArrowDown: current - 1, ArrowRight: current + 1, ArrowUp: current + 1,
        PageDown: current - page, PageUp: current + page, Home: 0, End: last
      }[e.key];
      if (e.key === " ") {
        e.preventDefault();
        if (timer) stop(); else play();
        return;
      }
      if (to === undefined || e.altKey || e.ctrlKey || e.metaKey) return;
      e.preventDefault();
      stop();
      go(to, "key");
    });

    fig.addEventListener("click", function (e) {
      var btn = e.target.closest("button[data-action]");
      if (!btn || !fig.contains(btn)) return;
      var action = btn.dataset.action;
      if (action === "play") { if (timer) stop(); else play(); return; }
      stop();
      if (action === "first") go(0, "button");
      else if (action === "prev") go(current - 1, "button");
      else if (action === "next") go(current + 1, "button");
      else if (action === "last") go(last, "button");
    });

    var fromHash = parseInt(A.hashGet(group), 10);
    render(0);
    A.setStep(group, isFinite(fromHash) ? A.clamp(fromHash, 0, last) : 0, "hash");
    if (A.getStep(group) !== current) render(A.clamp(A.getStep(group), 0, last));
  }

  window.addEventListener("hashchange", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-atlas=trajectory][data-atlas-mounted]"), function (fig) {
      var v = parseInt(A.hashGet(fig.dataset.group), 10);
      if (isFinite(v)) A.setStep(fig.dataset.group, A.clamp(v, 0, parseInt(fig.dataset.steps, 10)), "hash");
    });
  });

  A.widget("trajectory", mount);
})();

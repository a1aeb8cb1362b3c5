/* diffusion-atlas: keyboard access to tables that scroll sideways. Material wraps every table in a
 * .md-typeset__scrollwrap (overflow: auto); a table wider than the column makes it a scrolling region that a
 * keyboard cannot reach (WCAG 2.1.1; axe-core "scrollable-region-focusable", found on a real bake of the
 * faithfulness page). Such a wrapper becomes a named, focusable region (arrow keys then scroll it); one that fits
 * loses that again when the window grows.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  function title(wrap) {
    var caption = wrap.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    for (var el = wrap.previousElementSibling; el; el = el.previousElementSibling) {
      if (/^H[1-6]$/.test(el.tagName)) return el.textContent.replace(/¶$/, "").trim();
    }
    return "";
  }

  function update(root) {
    root.querySelectorAll(".md-typeset__scrollwrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        var name = title(wrap);
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (name ? name + ": " : "") + "table, scrolls sideways");
        wrap.dataset.atlasScroll = "1";
      } else if (!scrolls && wrap.dataset.atlasScroll) {
        ["tabindex", "role", "aria-label", "data-atlas-scroll"].forEach(function (a) { wrap.removeAttribute(a); });
      }
    });
  }

  var timer = 0;
  A.ready(function (root) {
    // Material wraps the tables on the same document$ emission: measure once it has
    requestAnimationFrame(function () { update(root); });
  });
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { update(document); }, 150);
  });
})();

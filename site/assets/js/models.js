/* diffusion-atlas model switch: one prompt page, the same prompt and seed on several models, one shown at a time.
 *
 * Markup (generator/render/templates/prompt.md.j2, when a prompt has others `alongside` it):
 *   .atlas-model-switch[data-atlas=models][role=tablist][hidden]   shown once this script runs
 *     button[role=tab][aria-controls=PANEL]                        one per model, the page's own first
 *   .atlas-model-view[role=tabpanel]#PANEL                         an empty marker; everything one model baked
 *                                                                  (scrubber, sections, final image, settings)
 *                                                                  follows it, up to the next marker or
 *   .atlas-model-end                                               the end marker; this script moves it inside
 * Without this script every model's part is shown, one after the other (each names its model in its first line).
 * The chosen model is kept in the URL hash (#model=<panel id>) so a link can open the page on it. Sprite sheets of
 * a hidden panel are not fetched (atlas-core loads a sheet when its widget is first shown). The page's table of
 * contents lists the headings of every panel; the entries of hidden panels are hidden with them.
 */
(function () {
  "use strict";
  var A = window.Atlas;

  // Table-of-contents entries (MkDocs-Material's secondary nav) whose heading lies in one of `panels`, by panel.
  function tocEntries(panels) {
    var byPanel = panels.map(function () { return []; });
    document.querySelectorAll(".md-nav--secondary a.md-nav__link[href^='#']").forEach(function (link) {
      var target = document.getElementById(decodeURIComponent(link.hash.slice(1)));
      var index = target ? panels.indexOf(target.closest(".atlas-model-view")) : -1;
      if (index >= 0) byPanel[index].push(link.closest("li") || link);
    });
    return byPanel;
  }

  function mount(root) {
    var bar = root.querySelector("[data-atlas=models]");
    if (!bar || bar.dataset.modelsMounted) return;
    bar.dataset.modelsMounted = "1";
    var tabs = Array.prototype.slice.call(bar.querySelectorAll("[role=tab]"));
    var panels = tabs.map(function (tab) { return document.getElementById(tab.getAttribute("aria-controls")); });
    panels.forEach(function (panel) { // gather the elements after each marker into it
      if (!panel) return;
      while (panel.nextSibling && !(panel.nextSibling.classList && (
        panel.nextSibling.classList.contains("atlas-model-view") || panel.nextSibling.classList.contains("atlas-model-end")))) {
        panel.appendChild(panel.nextSibling);
      }
    });

    var toc = tocEntries(panels);

    function show(index, remember) {
      tabs.forEach(function (tab, i) {
        var on = i === index;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        if (panels[i]) panels[i].hidden = !on;
        toc[i].forEach(function (entry) { entry.hidden = !on; });
      });
      if (remember) A.hashSet("model", index === 0 ? null : panels[index].id);
      window.dispatchEvent(new Event("resize")); // widgets that measure themselves see their new size
    }

    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { show(i, true); });
      tab.addEventListener("keydown", function (event) {
        var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
        if (!step) return;
        event.preventDefault();
        var next = (i + step + tabs.length) % tabs.length;
        show(next, true);
        tabs[next].focus();
      });
    });
    var wanted = panels.findIndex(function (panel) { return panel && panel.id === A.hashGet("model"); });
    bar.hidden = false;
    show(wanted < 0 ? 0 : wanted, false);
  }

  A.ready(mount);
})();

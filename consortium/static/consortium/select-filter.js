// The admin's two-box selector (filter_horizontal: a group's permissions, a person's
// groups) names its search icons with aria-label on a bare <span>, where ARIA allows no
// name and assistive technology ignores it: each such icon is given the role of an image,
// whose name that label is. The selector is built on the window's load event, after this
// deferred script: an observer sees its icons as they are added, on the pages that have one.
(function () {
  "use strict";
  if (!document.querySelector("select.selectfilter, select.selectfilterstacked")) {
    return;
  }
  new MutationObserver(function () {
    document.querySelectorAll(".search-label-icon[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }).observe(document.documentElement, { childList: true, subtree: true });
})();

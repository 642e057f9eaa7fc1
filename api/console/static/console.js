// jiuzhu console: the few things pages do in the browser. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  // every htmx request carries the page's CSRF token (forms carry it as a hidden field too)
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.body.dataset.csrf;
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });
  // the household form: add and remove members (a template row is cloned; names renumbered)
  function renumber(list) {
    list.querySelectorAll(".member").forEach(function (member, i) {
      member.querySelectorAll("[data-name]").forEach(function (el) {
        var id = "m" + i + "-" + el.dataset.name;
        if (el.tagName === "LABEL") { el.htmlFor = id; } else { el.name = "m" + i + ":" + el.dataset.name; el.id = id; }
      });
      member.querySelectorAll("[data-error]").forEach(function (el) {
        el.id = "err-m" + i + "-" + el.dataset.error;
      });
      var title = member.querySelector(".member-no");
      if (title) { title.textContent = String(i + 1); }
    });
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    if (target.matches("[data-add-member]")) {
      var list = document.getElementById("members");
      var tpl = document.getElementById("member-template");
      if (list && tpl) {
        list.appendChild(tpl.content.cloneNode(true));
        renumber(list);
        if (window.htmx) { window.htmx.process(list.lastElementChild); }
      }
      event.preventDefault();
    } else if (target.matches("[data-remove-member]")) {
      var member = target.closest(".member");
      var parent = member && member.parentElement;
      if (member && parent && parent.querySelectorAll(".member").length > 1) {
        member.remove();
        renumber(parent);
      }
      event.preventDefault();
    }
  });
})();

// Switchboard's client glue for htmx and its ws extension. Everything here is progressive: without it the pages
// still work (forms post, links navigate); with it the room stays live, in order and without gaps.
(function () {
  "use strict";

  // The newest message id in the page: every (re)connect of a room socket asks the server for what came after it,
  // so a reconnect replays the gap and loses nothing.
  function newestMessageId() {
    var items = document.querySelectorAll("#messages > [id^='msg-']");
    if (!items.length) return 0;
    return parseInt(items[items.length - 1].id.slice(4), 10) || 0;
  }

  function roomSocketURL(url) {
    var u = new URL(url, location.href);
    if (/\/rooms\/\d+\/ws$/.test(u.pathname)) {
      u.searchParams.set("after", String(newestMessageId()));
    }
    return u.toString();
  }

  // The ws extension calls htmx.createWebSocket on every connect and reconnect. Scripts are deferred in order, so
  // htmx and the extension are loaded here and have not connected yet.
  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      return new WebSocket(roomSocketURL(url), []);
    };
  }

  // Never show a message twice: drop pushed messages whose id is already in the page.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var frag = e.detail.fragment;
    if (!frag || !frag.children) return;
    Array.prototype.slice.call(frag.children).forEach(function (el) {
      if (el.id && el.id.indexOf("msg-") === 0 && document.getElementById(el.id)) el.remove();
    });
  });

  // Times arrive in UTC; show them in the reader's time zone.
  function localTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (t) {
      if (t.dataset.local) return;
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) return;
      t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      t.title = d.toLocaleString();
      t.dataset.local = "1";
    });
  }

  // Keep the newest message in view when the reader is at the bottom, and keep the reader's place when older
  // messages load above.
  var stick = true;
  var before = null;
  function messages() {
    return document.getElementById("messages");
  }
  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }
  document.addEventListener("htmx:wsBeforeMessage", function () {
    var el = messages();
    if (el) stick = atBottom(el);
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var el = messages();
    localTimes(el);
    if (el && stick) el.scrollTop = el.scrollHeight;
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = messages();
    if (el && e.detail.target && e.detail.target.id === "older") before = el.scrollHeight - el.scrollTop;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var el = messages();
    localTimes(el);
    if (el && before !== null) {
      el.scrollTop = el.scrollHeight - before;
      before = null;
    }
  });

  // Compose: Enter sends, Shift+Enter makes a new line; the field clears once the message has gone out.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t.id !== "compose-text" || e.key !== "Enter" || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    if (t.value.trim() !== "") t.form.requestSubmit();
  });
  document.addEventListener("htmx:wsAfterSend", function (e) {
    var form = e.detail.elt;
    if (form && form.id === "compose") form.reset();
  });

  // Connection state in the header.
  function connState(text, state) {
    var el = document.getElementById("conn-state");
    if (!el) return;
    el.textContent = text;
    el.dataset.state = state;
  }
  document.addEventListener("htmx:wsConnecting", function () {
    connState("connecting…", "connecting");
  });
  document.addEventListener("htmx:wsOpen", function () {
    connState("", "open");
  });
  document.addEventListener("htmx:wsClose", function () {
    connState(navigator.onLine ? "reconnecting…" : "offline", navigator.onLine ? "reconnecting" : "offline");
  });

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var el = messages();
    if (el) el.scrollTop = el.scrollHeight;
    // The reader's own messages never count as unread for them.
    var me = document.body.dataset.user;
    if (me && document.styleSheets.length) {
      try {
        var mine = '[data-author="' + CSS.escape(me) + '"]';
        var sheet = document.styleSheets[0];
        sheet.insertRule(".unread-badge i" + mine + " { display: none; }");
        sheet.insertRule(".unread-badge:not(:has(i:not(" + mine + "))) { display: none; }");
      } catch (_) {}
    }
  });
})();

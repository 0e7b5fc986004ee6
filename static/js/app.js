// Switchboard's client glue for htmx and its ws extension. Everything here is progressive: without it the pages
// still work (forms post, links navigate); with it a room stays live, in order, without gaps, and no typed
// message is lost.
(function () {
  "use strict";

  var me = document.body.dataset.user || "";

  function messages() {
    return document.getElementById("messages");
  }

  // ---- Gap replay: every (re)connect of a room's socket or stream asks for what came after the newest message
  // shown, so a reconnect replays the gap and loses nothing.

  function newestMessageId() {
    var items = document.querySelectorAll("#messages > [id^='msg-']");
    if (!items.length) return 0;
    return parseInt(items[items.length - 1].id.slice(4), 10) || 0;
  }

  function withAfter(url) {
    var u = new URL(url, location.href);
    if (/\/rooms\/\d+\/(ws|stream)$/.test(u.pathname)) u.searchParams.set("after", String(newestMessageId()));
    return u.toString();
  }

  // The extensions call these on every connect and reconnect. Scripts are deferred in order, so htmx and the
  // extensions are loaded here and have not connected yet.
  if (window.htmx) {
    htmx.createWebSocket = function (url) {
      return new WebSocket(withAfter(url), []);
    };
    htmx.createEventSource = function (url) {
      return new EventSource(withAfter(url), { withCredentials: true });
    };
  }

  // Never show a message twice, and keep the list in id order: drop pushed messages already in the page, and put
  // a late one (a gap filled after newer ones arrived) in its place instead of at the end.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var frag = e.detail.fragment;
    var list = messages();
    if (!frag || !frag.children || !list) return;
    endTyping(frag); // a message ends its author's typing notice
    Array.prototype.slice.call(frag.children).forEach(function (el) {
      if (!el.id || el.id.indexOf("msg-") !== 0) return;
      if (document.getElementById(el.id)) {
        el.remove();
        return;
      }
      var id = parseInt(el.id.slice(4), 10);
      if (id >= newestMessageId()) return;
      var next = Array.prototype.find.call(list.querySelectorAll(":scope > [id^='msg-']"), function (m) {
        return parseInt(m.id.slice(4), 10) > id;
      });
      if (next) list.insertBefore(el, next);
    });
  });

  // ---- Outbox: a typed message stays in the outbox and shows as pending until the server's copy comes back
  // carrying its client id. Each message has its own localStorage key (per user and room), so tabs never
  // overwrite each other's, and a reload keeps them. Pending messages are resent on every (re)connect; the server
  // stores a (room, client id) once, so a resend is never a duplicate. A message the server refuses stays in the
  // list, marked "not sent" with the reason, until the writer edits or discards it.

  var main = document.querySelector("main[data-room]");
  var room = main ? main.dataset.room : "";
  var prefix = "sb-out:" + me + ":" + room + ":";
  var live = null; // how to send while connected: the socket's wrapper, or "stream" (POST); null while down

  function outbox() {
    var items = [];
    for (var i = 0; i < localStorage.length; i++) {
      var key = localStorage.key(i);
      if (key.indexOf(prefix) !== 0) continue;
      try {
        items.push(JSON.parse(localStorage.getItem(key)));
      } catch (_) {}
    }
    return items.sort(function (a, b) { return a.at - b.at; });
  }
  function keep(item) {
    try {
      localStorage.setItem(prefix + item.id, JSON.stringify(item));
    } catch (_) {}
  }
  function drop(id) {
    localStorage.removeItem(prefix + id);
  }

  function newClientId() {
    var b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return "c-" + Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function button(label, action, id) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "ml-2 text-xs text-sky-700 underline dark:text-sky-400";
    b.textContent = label;
    b.dataset.outbox = action;
    b.dataset.clientId = id;
    return b;
  }

  function showPending() {
    var list = document.getElementById("pending");
    if (!list) return;
    list.textContent = "";
    outbox().forEach(function (item) {
      var li = document.createElement("li");
      li.className = "pending py-1 whitespace-pre-wrap break-words";
      li.dataset.clientId = item.id;
      var text = document.createElement("span");
      text.className = "opacity-60";
      text.textContent = item.text;
      var state = document.createElement("span");
      state.className = "ml-2 text-xs";
      li.appendChild(text);
      li.appendChild(state);
      if (item.refused) {
        state.className += " text-red-700 dark:text-red-300";
        state.textContent = "Not sent: " + item.refused;
        li.appendChild(button("Edit", "edit", item.id));
        li.appendChild(button("Discard", "discard", item.id));
      } else {
        state.textContent = live ? "sending…" : "waiting for the connection…";
      }
      list.appendChild(li);
    });
  }

  document.addEventListener("click", function (e) {
    var action = e.target.dataset && e.target.dataset.outbox;
    if (!action) return;
    var id = e.target.dataset.clientId;
    var item = outbox().filter(function (it) { return it.id === id; })[0];
    var field = document.getElementById("compose-text");
    if (item && action === "edit" && field) {
      field.value = field.value ? field.value + "\n" + item.text : item.text;
      field.focus();
    }
    drop(id);
    showPending();
  });
  window.addEventListener("storage", function (e) {
    if (e.key && e.key.indexOf(prefix) === 0) showPending();
  });

  function csrfToken() {
    var input = document.querySelector("#compose input[name=_csrf]");
    return input ? input.value : "";
  }

  function sendItem(item) {
    if (!live || item.refused) return;
    if (live !== "stream") {
      live.sendImmediately(JSON.stringify({ text: item.text, client_id: item.id }));
      return;
    }
    // Stream mode: post it; the copy comes back on the stream. A refusal is marked like the socket's.
    var form = new FormData();
    form.set("text", item.text);
    form.set("client_id", item.id);
    form.set("_csrf", csrfToken());
    fetch(location.pathname.replace(/\/$/, "") + "/messages", {
      method: "POST",
      body: form,
      headers: { "HX-Request": "true", "X-Csrf-Token": csrfToken() },
      credentials: "same-origin",
    }).then(function (resp) {
      if (resp.ok || resp.status >= 500) return; // stored, or retried on the next reconnect
      return resp.text().then(function (body) {
        var msg = new DOMParser().parseFromString(body, "text/html").getElementById("flash");
        refuse(item.id, msg ? msg.textContent : "the server refused it");
      });
    }).catch(function () {});
  }

  function refuse(id, reason) {
    var item = outbox().filter(function (it) { return it.id === id; })[0];
    if (!item) return;
    item.refused = reason || "the server refused it";
    keep(item);
    showPending();
  }

  // settle takes out of the outbox what the server stored (its copy is in the page), and marks what it refused
  // (the socket's error fragment names the send).
  function settle() {
    var err = document.getElementById("compose-error");
    if (err && err.dataset.clientId) {
      refuse(err.dataset.clientId, err.textContent);
      delete err.dataset.clientId;
    }
    outbox().forEach(function (item) {
      if (document.querySelector('#messages [data-client-id="' + item.id + '"]')) drop(item.id);
    });
    showPending();
  }

  // With JavaScript, the compose form's submit goes to the outbox; without, it posts and the page reloads.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.id !== "compose") return;
    e.preventDefault();
    var field = form.elements.text;
    var text = field ? field.value : "";
    if (!text.trim()) return;
    var item = { id: newClientId(), text: text, at: Date.now() };
    keep(item);
    form.reset();
    showPending();
    sendItem(item);
  });

  // ---- Connection state (header and pending messages), and the fallback to SSE + POST when WebSockets keep
  // failing (a proxy that refuses upgrades).

  var failures = 0;
  var opened = false; // the current connection attempt opened
  var everOpened = false; // some WebSocket opened on this page: later failures are outages, not a blocking proxy

  function connState(text, state) {
    document.body.dataset.conn = state;
    var el = document.getElementById("conn-state");
    if (!el) return;
    el.textContent = text;
    el.dataset.state = state;
  }
  function connected(how) {
    live = how;
    failures = 0;
    connState("", "open");
    showPending();
    outbox().forEach(sendItem);
  }
  function disconnected() {
    live = null;
    connState(navigator.onLine ? "reconnecting…" : "offline", navigator.onLine ? "reconnecting" : "offline");
    showPending();
  }

  function switchToStream() {
    var old = document.getElementById("live");
    if (!old || !room || !window.htmx) return;
    var el = document.createElement("div");
    el.id = "live";
    el.setAttribute("hx-ext", "sse");
    el.setAttribute("sse-connect", "/rooms/" + room + "/stream");
    el.setAttribute("sse-swap", "message");
    el.setAttribute("hx-swap", "none");
    htmx.remove(old); // closes the socket and stops its reconnects
    main.insertBefore(el, main.firstChild);
    htmx.process(el);
  }

  document.addEventListener("htmx:wsConnecting", function () {
    opened = false;
    connState("connecting…", "connecting");
  });
  document.addEventListener("htmx:wsOpen", function (e) {
    opened = everOpened = true;
    connected(e.detail.socketWrapper);
  });
  // The extension reconnects by itself after 1006, 1011, 1012 and 1013. Other codes end the connection for good:
  // 1008 means signed out (or no longer allowed), the rest need a reload.
  document.addEventListener("htmx:wsClose", function (e) {
    var code = e.detail.event ? e.detail.event.code : 1006;
    if (code === 1008) {
      live = null;
      connState("signed out: sign in again", "offline");
      showPending();
      return;
    }
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0) {
      live = null;
      connState("disconnected: reload the page", "offline");
      showPending();
      return;
    }
    disconnected();
    if (!opened && !everOpened && ++failures >= 3) switchToStream();
  });
  document.addEventListener("htmx:sseOpen", function () {
    connected("stream");
  });
  document.addEventListener("htmx:sseError", disconnected);
  window.addEventListener("offline", function () {
    if (!live) connState("offline", "offline");
  });

  // ---- Times arrive in UTC: show them in the reader's time zone, mark where a new day starts, and group
  // messages by author and minute (the page render groups too; pushes are grouped here).

  var dayFormat = { weekday: "long", day: "numeric", month: "long" };
  function dayLabel(d) {
    var today = new Date();
    var yesterday = new Date(today.getTime() - 86400000);
    if (d.toDateString() === today.toDateString()) return "Today";
    if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
    return d.toLocaleDateString([], dayFormat);
  }

  function decorate() {
    var el = messages();
    if (!el) return;
    var prev = null;
    var prevDay = "";
    el.querySelectorAll(":scope > article[id^='msg-']").forEach(function (a) {
      var t = a.querySelector("time[datetime]");
      var d = t ? new Date(t.getAttribute("datetime")) : null;
      if (t && !t.dataset.local && d && !isNaN(d)) {
        t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        t.title = d.toLocaleString();
        t.dataset.local = "1";
      }
      var day = d && !isNaN(d) ? d.toDateString() : prevDay;
      if (day !== prevDay) a.dataset.day = dayLabel(d);
      else delete a.dataset.day;
      var grouped = prev && day === prevDay && a.classList.contains("msg") && prev.classList.contains("msg") &&
        a.dataset.author === prev.dataset.author && a.dataset.minute === prev.dataset.minute;
      a.classList.toggle("grouped", !!grouped);
      prev = a;
      prevDay = day;
    });
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) return;
      t.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      t.dataset.local = "1";
    });
  }

  // ---- Typing: the page tells the room (at most every 3 s) while the reader types; the room's notices expire by
  // themselves, and a user's message ends their notice.

  var typedAt = 0;
  document.addEventListener("input", function (e) {
    if (e.target.id !== "compose-text" || !live || live === "stream") return;
    var now = Date.now();
    if (now - typedAt < 3000 || !e.target.value.trim()) return;
    typedAt = now;
    live.sendImmediately(JSON.stringify({ typing: true }));
  });

  function showTyping() {
    var box = document.getElementById("typers");
    var out = document.getElementById("typing");
    if (!box || !out) return;
    var now = Date.now();
    var newest = {};
    Array.prototype.slice.call(box.children).forEach(function (s) {
      var who = s.dataset.typer;
      var until = parseInt(s.dataset.until, 10) || 0;
      if (until <= now || (newest[who] && newest[who] >= until)) {
        s.remove();
        return;
      }
      newest[who] = until;
    });
    var names = Object.keys(newest).filter(function (n) { return n !== me; });
    out.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" :
      names.length === 2 ? names[0] + " and " + names[1] + " are typing…" :
      "Several people are typing…";
  }
  // A message from someone ends their typing notice.
  function endTyping(frag) {
    var box = document.getElementById("typers");
    if (!box || !frag || !frag.querySelectorAll) return;
    var ended = false;
    frag.querySelectorAll("article.msg[data-author]").forEach(function (a) {
      box.querySelectorAll("[data-typer='" + CSS.escape(a.dataset.author) + "']").forEach(function (s) {
        s.remove();
        ended = true;
      });
    });
    if (ended) showTyping();
  }
  setInterval(showTyping, 1000);

  // ---- The page title counts unread messages in the user's other rooms.

  var baseTitle = document.title;
  function unreadTitle() {
    var n = 0;
    document.querySelectorAll(".unread-badge i").forEach(function (i) {
      if (i.dataset.author !== me) n++;
    });
    document.title = (n ? "(" + (n > 99 ? "99+" : n) + ") " : "") + baseTitle;
  }

  // ---- Scrolling: keep the newest message in view when the reader is at the bottom; otherwise offer a pill
  // that jumps down. Keep the reader's place when older messages load above.

  var stick = true;
  var fromBottom = null;
  var newest = 0;
  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }
  function pill(show) {
    var p = document.getElementById("new-pill");
    if (p) p.hidden = !show;
  }
  function beforeMessage() {
    var el = messages();
    if (el) stick = atBottom(el);
    newest = newestMessageId();
  }
  function afterMessage() {
    var el = messages();
    decorate();
    settle();
    showTyping();
    unreadTitle();
    if (!el) return;
    if (stick) el.scrollTop = el.scrollHeight;
    else if (newestMessageId() > newest) pill(true);
  }
  document.addEventListener("htmx:wsBeforeMessage", beforeMessage);
  document.addEventListener("htmx:wsAfterMessage", afterMessage);
  document.addEventListener("htmx:sseBeforeMessage", beforeMessage);
  document.addEventListener("htmx:sseMessage", afterMessage);
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = messages();
    if (el && e.detail.target && e.detail.target.id === "older") fromBottom = el.scrollHeight - el.scrollTop;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var el = messages();
    decorate();
    if (el && fromBottom !== null) {
      el.scrollTop = el.scrollHeight - fromBottom;
      fromBottom = null;
    }
  });
  document.addEventListener("click", function (e) {
    if (e.target.id !== "new-pill") return;
    var el = messages();
    if (el) el.scrollTop = el.scrollHeight;
    pill(false);
  });
  document.addEventListener("scroll", function (e) {
    if (e.target.id === "messages" && atBottom(e.target)) pill(false);
  }, true);

  // ---- Compose: Enter sends and Shift+Enter makes a new line on a keyboard; on a touch screen Enter makes a new
  // line and the button sends.

  var touch = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t.id !== "compose-text" || e.key !== "Enter" || e.shiftKey || e.isComposing || touch) return;
    e.preventDefault();
    if (t.value.trim() !== "") t.form.requestSubmit();
  });

  // ---- Start.

  document.addEventListener("DOMContentLoaded", function () {
    decorate();
    if (room) settle();
    var el = messages();
    if (el) el.scrollTop = el.scrollHeight;
    // The reader's own messages never count as unread for them.
    if (me && document.styleSheets.length) {
      try {
        var mine = '[data-author="' + CSS.escape(me) + '"]';
        var sheet = document.styleSheets[0];
        sheet.insertRule(".unread-badge i" + mine + " { display: none; }");
        sheet.insertRule(".unread-badge:not(:has(i:not(" + mine + "))) { display: none; }");
      } catch (_) {}
    }
    unreadTitle();
  });
})();

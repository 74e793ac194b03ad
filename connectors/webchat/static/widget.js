/* The bridge's chat widget. One script tag:
   <script src="https://bridge.example.com/widget.js" data-site="shop" async></script>
   Everything lives in an open Shadow DOM; texts are set with textContent only.
   Messages stay queued (here and in localStorage) until the bridge acknowledges them. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.BridgeChat && window.BridgeChat.loaded) return;
  var site = me.getAttribute("data-site") || "";
  var base = me.src.replace(/\/widget\.js([?#].*)?$/, "");
  var KEY = "bridgechat:" + site + ":";
  var ident = {user_id: me.getAttribute("data-user-id") || "",
    user_hash: me.getAttribute("data-user-hash") || "", name: "", email: "", email_hash: ""};
  var T = {};  // the texts, in the page's language, from the bridge

  function load(k) { try { return JSON.parse(localStorage.getItem(KEY + k)); } catch (e) { return null; } }
  function save(k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) { /* private mode */ } }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    for (var a in attrs) n.setAttribute(a, attrs[a]);
    if (text != null) n.textContent = text;
    return n;
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  var api = window.BridgeChat = {loaded: true};
  var queue = load("queue") || [];   // [{client_id, text, page}] not yet acknowledged
  var token = load("token") || "";
  var lastId = 0, ws = null, tries = 0, timer = 0, beat = 0, heard = 0, refused = false;
  var shown = {};                      // message id -> element
  var root, fab, win, log, input, status, invited = "", mail = null;

  api.identify = function (o) {
    o = o || {};
    ident = {user_id: String(o.user_id || ""), user_hash: String(o.user_hash || ""),
      name: String(o.name || ""), email: String(o.email || ""),
      email_hash: String(o.email_hash || "")};
    refused = false;
    if (ws) ws.close(); else if (fab) check();
  };

  function query() {
    var q = "site=" + encodeURIComponent(site) + "&lang=" +
      encodeURIComponent(document.documentElement.lang || navigator.language || "");
    for (var k in ident) if (ident[k]) q += "&" + k + "=" + encodeURIComponent(ident[k]);
    return q;
  }

  function check() {
    // The bridge answers only pages on the site's allowed origins.
    fetch(base + "/webchat/config?" + query(), {method: "POST", mode: "cors", credentials: "omit"})
      .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (rb) {
        if (rb[0] === 403 && rb[1].config) {
          refused = true;
          if (!fab) build(rb[1].config);
          say(T.unverified);
          return;
        }
        if (rb[0] !== 200) return;
        if (!fab) build(rb[1]); else say("");
        if (token || queue.length) connect();
      }, function () { /* the bridge is unreachable: no button */ });
  }

  function build(cfg) {
    T = cfg.texts;
    var host = el("div", {"data-bridge-chat": site});
    root = host.attachShadow({mode: "open"});
    var c = cfg.colors || {};
    var css = ":host{all:initial;--p:" + c.primary + ";--o:" + c.on_primary + "}" +
      "*{box-sizing:border-box;font:15px/1.4 system-ui,sans-serif}" +
      ".fab{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;background:var(--p);color:var(--o);cursor:pointer;box-shadow:0 2px 8px #0004}" +
      ".fab svg{width:28px;height:28px;fill:currentColor;vertical-align:middle}" +
      ".win{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:min(360px,calc(100vw - 24px));height:min(520px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;color:#1a1a1a;border-radius:12px;box-shadow:0 4px 24px #0005;overflow:hidden}" +
      ".win[hidden]{display:none}" +
      "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:var(--p);color:var(--o)}" +
      "h2{margin:0;font-size:16px;font-weight:600}" +
      ".x{border:0;background:none;color:inherit;font-size:22px;cursor:pointer;line-height:1;padding:2px 6px}" +
      ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}" +
      ".m{max-width:82%;padding:8px 10px;border-radius:10px;background:#eef0f3;white-space:pre-wrap;word-wrap:break-word}" +
      ".m.me{align-self:flex-end;background:var(--p);color:var(--o)}" +
      ".a{display:flex;align-items:center;gap:6px;font-size:13px;font-weight:600;margin-bottom:2px}" +
      ".av{width:22px;height:22px;border-radius:50%;background:#555;color:#fff;font-size:11px;display:inline-flex;align-items:center;justify-content:center}" +
      ".s{display:block;font-size:12px;opacity:.85;text-align:right}" +
      ".st{margin:0;padding:0 12px;font-size:13px;color:#444;min-height:0}" +
      "form{display:flex;gap:6px;padding:10px;border-top:1px solid #ddd}" +
      "textarea{flex:1;resize:none;height:42px;padding:8px;border:1px solid #767676;border-radius:8px;color:#1a1a1a}" +
      ".off{padding:10px 12px;background:#fff8e1;color:#1a1a1a;font-size:14px}.off p{margin:0 0 6px}" +
      ".off label{display:block}.off input{display:block;width:100%;margin-top:4px;padding:6px;border:1px solid #767676;border-radius:6px}" +
      ".clip{background:none!important;color:#1a1a1a!important;padding:0 6px!important;font-size:18px}" +
      ".f img{display:block;max-width:100%;max-height:180px;border-radius:6px;margin-top:4px}.f a{color:inherit}" +
      "form button{border:0;border-radius:8px;padding:0 14px;background:var(--p);color:var(--o);cursor:pointer}" +
      ".inv{position:fixed;right:20px;bottom:88px;z-index:2147483000;max-width:280px;display:flex;gap:6px;align-items:flex-start;padding:10px 12px;background:#fff;color:#1a1a1a;border-radius:10px;box-shadow:0 2px 12px #0004}" +
      ".inv p{margin:0;cursor:pointer}.inv button{border:0;background:none;font-size:18px;line-height:1;cursor:pointer;color:#1a1a1a}" +
      ".win,.inv{animation:in .2s ease-out}@keyframes in{from{opacity:0;transform:translateY(8px)}}" +
      "@media (prefers-reduced-motion:reduce){.win,.inv{animation:none}}" +
      ":focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}";
    root.appendChild(el("style", {}, css));
    fab = el("button", {"class": "fab", type: "button", "aria-label": T.open, "aria-expanded": "false"});
    fab.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
    win = el("div", {"class": "win", role: "dialog", "aria-label": cfg.title, lang: cfg.language, hidden: ""});
    var head = el("header");
    head.appendChild(el("h2", {}, cfg.title));
    var x = el("button", {"class": "x", type: "button", "aria-label": T.close}, "×");
    head.appendChild(x);
    log = el("div", {"class": "log", role: "log", "aria-live": "polite", "aria-label": T.messages, tabindex: "0"});
    status = el("p", {"class": "st", role: "status"});
    var form = el("form");
    var pick = el("input", {type: "file", hidden: ""});
    var clip = el("button", {type: "button", "class": "clip", "aria-label": T.attach}, "📎");
    clip.onclick = function () { pick.click(); };
    pick.onchange = function () { if (pick.files[0]) attach(pick.files[0]); pick.value = ""; };
    form.appendChild(pick); form.appendChild(clip);
    input = el("textarea", {"aria-label": T.message, placeholder: T.placeholder, maxlength: "4000"});
    form.appendChild(input);
    var go = el("button", {type: "submit", "aria-label": T.send}, T.send_button);
    form.appendChild(go);
    win.appendChild(head);
    if (cfg.offline) {  // outside the team's hours: say so, and ask where to answer
      var off = el("div", {"class": "off"}), n = cfg.offline.next_open;
      off.appendChild(el("p", {}, n ? T.offline_until.replace("{when}", new Date(n).toLocaleString(
        cfg.language, {weekday: "long", hour: "2-digit", minute: "2-digit"})) : T.offline));
      var lab = el("label", {}, T.email_prompt);
      mail = el("input", {type: "email", autocomplete: "email", "aria-label": T.email_label});
      mail.value = load("email") || ident.email || "";
      mail.onchange = function () { save("email", mail.value.trim()); };
      lab.appendChild(mail); off.appendChild(lab); win.appendChild(off);
    }
    win.appendChild(log); win.appendChild(status); win.appendChild(form);
    root.appendChild(fab); root.appendChild(win);
    fab.onclick = function () { win.hidden ? open() : close(); };
    x.onclick = close;
    win.addEventListener("keydown", function (e) {
      if (e.key === "Escape") close();
      if (e.key !== "Tab") return;  // focus stays in the open window
      var ring = (mail ? [x, mail, log] : [x, log]).concat([clip, input, go]), at = ring.indexOf(root.activeElement);
      var next = (at + (e.shiftKey ? ring.length - 1 : 1)) % ring.length;
      e.preventDefault();
      ring[at < 0 ? 0 : next].focus();
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
    });
    form.onsubmit = function (e) { e.preventDefault(); submit(); };
    document.body.appendChild(host);
    for (var i = 0; i < queue.length; i++) bubble(null, queue[i].client_id, "visitor", null, queue[i].text);
    if (refused) say(T.unverified);
    invite(cfg.invitations || []);
  }

  function invite(list) {
    var today = new Date().toDateString();
    if (load("invited") === today) return;
    for (var i = 0; i < list.length; i++) {
      var pat = new RegExp("^" + list[i].url_pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
      if (!pat.test(location.pathname)) continue;
      var text = list[i].text;
      setTimeout(function () {
        if (!win.hidden || load("invited") === today) return;
        save("invited", today);
        invited = text;
        var b = el("div", {"class": "inv", role: "status"});
        var p = el("p", {}, text);
        var d = el("button", {type: "button", "aria-label": T.dismiss}, "×");
        b.appendChild(p); b.appendChild(d);
        p.onclick = function () { b.remove(); open(); };
        d.onclick = function () { b.remove(); fab.focus(); };
        root.appendChild(b);
      }, list[i].after_seconds * 1000);
      return;
    }
  }

  function open() {
    var b = root.querySelector(".inv");
    if (b) b.remove();
    win.hidden = false;
    fab.setAttribute("aria-expanded", "true");
    input.focus();
    connect();
  }
  function close() {
    win.hidden = true;
    fab.setAttribute("aria-expanded", "false");
    fab.focus();
  }
  function say(text) { if (status) status.textContent = text; }

  function files(m, list) {
    var old = m.querySelector(".f");
    if (old) old.remove();
    var box = el("span", {"class": "f"});
    for (var i = 0; i < list.length; i++) {
      var f = list[i];
      if (String(f.url).indexOf(base + "/") !== 0) continue;
      if (/^image\/(png|jpeg|gif|webp)$/.test(f.type)) box.appendChild(el("img", {src: f.url, alt: f.name}));
      else box.appendChild(el("a", {href: f.url, target: "_blank", rel: "noopener"}, "📎 " + f.name));
    }
    var t = m.querySelector(".t");
    if (t && list.length && t.textContent.indexOf("📎") === 0) t.textContent = "";
    m.insertBefore(box, m.querySelector(".s"));
  }

  function bubble(id, clientId, from, author, text, pending, list) {
    var found = (id && shown[id]) || (clientId && root.querySelector('[data-client-id="' + clientId + '"]'));
    if (!found && text == null) return;
    if (found) {
      if (id) { found.setAttribute("data-id", id); shown[id] = found; mark(found, false); }
      if (list && list.length) files(found, list);
      if (text && !found.querySelector(".t").textContent) found.querySelector(".t").textContent = text;
      return found;
    }
    var m = el("div", {"class": from === "visitor" ? "m me" : "m"});
    if (clientId) m.setAttribute("data-client-id", clientId);
    if (id) { m.setAttribute("data-id", id); shown[id] = m; }
    if (from !== "visitor") {
      var a = el("span", {"class": "a"});
      var name = (author && author.name) || "";
      if (author && author.avatar && author.avatar.indexOf(base + "/") === 0) {
        a.appendChild(el("img", {"class": "av", src: author.avatar, alt: ""}));
      } else {
        a.appendChild(el("span", {"class": "av", "aria-hidden": "true"}, (name || "?").charAt(0).toUpperCase()));
      }
      a.appendChild(el("span", {}, name));
      m.appendChild(a);
    }
    m.appendChild(el("span", {"class": "t"}, text));
    if (from === "visitor") m.appendChild(el("span", {"class": "s"}, pending ? T.sending : T.sent));
    if (list && list.length) files(m, list);
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
    return m;
  }

  var later = null;  // a file picked before the bridge gave this visitor a token
  function attach(file) {
    if (!token && !ident.user_hash) { later = file; connect(); return; }
    var cid = uuid(), m = bubble(null, cid, "visitor", null, "📎 " + file.name, true);
    fetch(base + "/webchat/upload?" + query() + "&token=" + encodeURIComponent(token) +
      "&client_id=" + cid + "&name=" + encodeURIComponent(file.name),
      {method: "POST", body: file, headers: {"Content-Type": file.type || "application/octet-stream"}})
      .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (rb) {
        if (rb[0] === 200) { bubble(rb[1].id, cid); lastId = Math.max(lastId, rb[1].id); return; }
        m.remove(); say(T.upload_failed + " " + (rb[1].error || rb[0]));
      }, function () { m.remove(); say(T.upload_failed + " " + file.name); });
  }
  function mark(m, pending) {
    var s = m.querySelector(".s");
    if (s) s.textContent = pending ? T.sending : T.sent;
  }

  function submit() {
    var text = input.value.trim();
    if (!text || refused) return;
    input.value = "";
    var item = {client_id: uuid(), text: text, page: {url: location.href, referrer: document.referrer,
      language: document.documentElement.lang || navigator.language, local_time: new Date().toString(),
      invitation: invited, email: mail ? mail.value.trim() : ""}};
    queue.push(item);
    save("queue", queue);
    bubble(null, item.client_id, "visitor", null, text, true);
    if (lp) { if (token || ident.user_hash) poll(true); else connect(); }
    else if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame(item)));
    else connect();
  }

  function frame(it) { return {type: "message", client_id: it.client_id, text: it.text, page: it.page}; }
  function handle(f) {
    if (f.type === "welcome") {
      tries = 0; say("");
      if (f.visitor_token && f.visitor_token !== token) { token = f.visitor_token; save("token", token); }
      if (later) { attach(later); later = null; }
      if (!ws || ws.readyState !== 1) return;
      ws.send(JSON.stringify({type: "resume", after: lastId}));
      for (var i = 0; i < queue.length; i++) ws.send(JSON.stringify(frame(queue[i])));
    } else if (f.type === "ack") {
      queue = queue.filter(function (it) { return it.client_id !== f.client_id; });
      save("queue", queue);
      bubble(f.id, f.client_id);
      lastId = Math.max(lastId, f.id);
    } else if (f.type === "message") {
      bubble(f.id, f.client_id, f.from, f.author, f.text, false, f.files);
      if (f.client_id) {
        queue = queue.filter(function (it) { return it.client_id !== f.client_id; });
        save("queue", queue);
      }
      lastId = Math.max(lastId, f.id);
    } else if (f.type === "error" && f.code === "rate_limited") {
      say(T.limited);
    }
  }

  // Where WebSockets are blocked: the same frames over HTTP long-polls.
  var lp = !window.WebSocket, polling = false, opened = false, fails = 0;
  function backoff() { return Math.min(30000, 500 * Math.pow(2, tries++)) * (0.75 + Math.random() / 2); }
  function poll(once) {
    if (refused || (!once && polling)) return;
    if (!once) polling = true;
    fetch(base + "/webchat/poll?" + query() + (token ? "&token=" + encodeURIComponent(token) : ""),
      {method: "POST", body: JSON.stringify({after: lastId, frames: queue.map(frame)})})
      .then(function (r) { if (r.status !== 200) throw r.status; return r.json(); })
      .then(function (b) {
        tries = 0; say("");
        b.frames.forEach(handle);
        if (!once) { polling = false; poll(); }
      }, function () {
        say(T.connecting);
        if (!once) { polling = false; setTimeout(poll, backoff()); }
      });
  }

  function connect() {
    if (lp) { poll(); return; }
    if (refused || (ws && ws.readyState < 2)) return;
    clearTimeout(timer);
    var q = query() + (token ? "&token=" + encodeURIComponent(token) : "");
    say(T.offline);
    ws = new WebSocket(base.replace(/^http/, "ws") + "/webchat/ws?" + q);
    ws.onmessage = function (e) {
      heard = Date.now();
      var f; try { f = JSON.parse(e.data); } catch (err) { return; }
      handle(f);
    };
    ws.onclose = function () {
      clearInterval(beat);
      ws = null;
      if (refused) return;
      if (!opened && ++fails >= 3) { lp = true; poll(); return; }  // blocked, not down
      say(T.offline);
      var wait = Math.min(30000, 500 * Math.pow(2, tries++)) * (0.75 + Math.random() / 2);
      timer = setTimeout(function () { check(); connect(); }, wait);
    };
    ws.onopen = function () {
      opened = true;
      heard = Date.now();
      clearInterval(beat);
      beat = setInterval(function () {
        if (!ws || ws.readyState !== 1) return;
        if (Date.now() - heard > 60000) { ws.close(); return; }
        ws.send('{"type":"ping"}');
      }, 25000);
    };
  }

  if (document.body) check(); else document.addEventListener("DOMContentLoaded", check);
})();

/* FiberNode installable app: service worker, install prompt, offline state,
 * auto-update banner and mobile gestures (pull-to-refresh, swipe back).
 *
 * Loaded with a plain deferred <script> from the head. The banners it builds
 * live in their own container at the end of <body>, outside the React tree, so
 * showing them never re-renders a page (typed input is never lost).
 */
(function () {
  "use strict";

  var BUILD = String(window.FN_BUILD_VERSION || "");
  var CHECK_INTERVAL_MS = 5 * 60 * 1000;
  var INSTALL_SNOOZE_MS = 14 * 24 * 60 * 60 * 1000;
  var INSTALL_KEY = "fn-install-dismissed-at";
  var html = document.documentElement;

  var pwa = (window.FN_PWA = window.FN_PWA || {});
  pwa.build = BUILD;

  function isReceipt() {
    return location.pathname.indexOf("/receipt/") === 0;
  }
  function isStandalone() {
    return (window.matchMedia && window.matchMedia("(display-mode: standalone)").matches)
      || window.navigator.standalone === true;
  }
  function isIOS() {
    var ua = navigator.userAgent || "";
    return /iphone|ipad|ipod/i.test(ua)
      || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  var rootNode = null;
  function root() {
    if (!rootNode || !rootNode.isConnected) {
      rootNode = el("div", { id: "fn-pwa-root", "data-testid": "pwa-root" });
      document.body.appendChild(rootNode);
    }
    return rootNode;
  }
  function whenReady(fn) {
    if (document.readyState === "complete") setTimeout(fn, 0);
    else window.addEventListener("load", function () { setTimeout(fn, 0); });
  }

  /* ---------- branding (app name for the banners) ---------- */
  var appName = "FiberNode";
  function fetchBranding() {
    return fetch("/api/settings/branding", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (b) {
        if (b && b.app_name) appName = b.app_name;
        // The browser chrome follows the superadmin's colour without a rebuild.
        var meta = document.querySelector('meta[name="theme-color"]');
        if (b && b.theme_color && meta) meta.setAttribute("content", b.theme_color);
        return b;
      });
  }

  /* ---------- service worker ---------- */
  pwa.swReady = null;
  function registerWorker() {
    if (!("serviceWorker" in navigator) || isReceipt()) return;
    pwa.swReady = navigator.serviceWorker
      .register("/sw.js?v=" + encodeURIComponent(BUILD || "dev"), { scope: "/" })
      .catch(function (e) { console.warn("service worker", e); return null; });
  }

  /* ---------- offline state (network); the websocket part is Reflex's ---------- */
  function syncOnline() {
    html.classList.toggle("fn-net-offline", navigator.onLine === false);
  }
  window.addEventListener("online", syncOnline);
  window.addEventListener("offline", syncOnline);
  syncOnline();

  /* ---------- install prompt ---------- */
  var deferredPrompt = null;
  function installDismissed() {
    try {
      var at = Number(localStorage.getItem(INSTALL_KEY) || 0);
      return at > 0 && Date.now() - at < INSTALL_SNOOZE_MS;
    } catch (e) { return false; }
  }
  function hideInstall() {
    var node = document.getElementById("fn-install");
    if (node) node.remove();
  }
  function showInstall(kind) {
    if (isStandalone() || isReceipt() || installDismissed()) return;
    hideInstall();
    var title = "Install " + appName;
    var body = kind === "ios"
      ? "Ketuk Bagikan lalu Tambah ke Layar Utama untuk memasang aplikasi."
      : "Pasang aplikasi di layar utama agar lebih cepat dibuka, juga saat sinyal lemah.";
    var actions = [];
    if (kind !== "ios") {
      actions.push(el("button", { type: "button", class: "fn-pwa-btn fn-pwa-btn-primary",
        "data-pwa": "install", "data-testid": "install-button", text: "Install" }));
    }
    actions.push(el("button", { type: "button", class: "fn-pwa-btn",
      "data-pwa": "install-dismiss", "data-testid": "install-dismiss",
      text: kind === "ios" ? "Mengerti" : "Nanti" }));
    var card = el("div", { id: "fn-install", class: "fn-pwa-banner fn-pwa-install fn-pwa-" + kind,
      role: "dialog", "aria-label": title, "data-testid": "install-banner" }, [
      el("img", { src: "/icons/icon-192.png", alt: "", class: "fn-pwa-icon" }),
      el("div", { class: "fn-pwa-text" }, [
        el("strong", { text: title }),
        el("span", { text: body }),
      ]),
      el("div", { class: "fn-pwa-actions" }, actions),
    ]);
    root().appendChild(card);
  }
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    deferredPrompt = event;
    whenReady(function () { showInstall("android"); });
  });
  window.addEventListener("appinstalled", function () {
    deferredPrompt = null;
    hideInstall();
  });
  function doInstall() {
    var promptEvent = deferredPrompt;
    deferredPrompt = null;
    hideInstall();
    if (!promptEvent || typeof promptEvent.prompt !== "function") return;
    Promise.resolve(promptEvent.prompt()).then(function () {
      return promptEvent.userChoice;
    }).then(function (choice) {
      if (choice && choice.outcome === "dismissed") {
        try { localStorage.setItem(INSTALL_KEY, String(Date.now())); } catch (e) { /* private */ }
      }
    }).catch(function () { /* the browser refused */ });
  }

  /* ---------- unsaved form input ---------- */
  var dirtyForms = new Set();
  function formOf(target) {
    if (!target || !target.closest) return null;
    if (!target.matches("input, textarea, select, [contenteditable='true']")) return null;
    return target.closest("form") || target.closest("[role=dialog]");
  }
  function markDirty(event) {
    var form = formOf(event.target);
    if (form) dirtyForms.add(form);
  }
  function markClean(event) {
    dirtyForms.delete(event.target);
    setTimeout(checkVersion, 1500);
  }
  document.addEventListener("input", markDirty, true);
  document.addEventListener("change", markDirty, true);
  document.addEventListener("submit", markClean, true);
  document.addEventListener("reset", markClean, true);
  function hasUnsavedInput() {
    dirtyForms.forEach(function (form) { if (!form.isConnected) dirtyForms.delete(form); });
    return dirtyForms.size > 0;
  }
  pwa.hasUnsavedInput = hasUnsavedInput;

  /* ---------- auto-update ---------- */
  var snoozedUntil = 0;
  var latest = null;
  function hideUpdate() {
    var node = document.getElementById("fn-update");
    if (node) node.remove();
  }
  function showUpdate(version) {
    if (document.getElementById("fn-update")) return;
    var card = el("div", { id: "fn-update", class: "fn-pwa-banner fn-pwa-update",
      role: "alert", "data-testid": "update-banner" }, [
      el("div", { class: "fn-pwa-text" }, [
        el("strong", { text: "Versi baru tersedia (v" + version + ")" }),
        el("span", { text: "Anda menggunakan v" + BUILD + ". Klik untuk memperbarui." }),
      ]),
      el("div", { class: "fn-pwa-actions" }, [
        el("button", { type: "button", class: "fn-pwa-btn", "data-pwa": "update-later",
          "data-testid": "update-later", text: "Nanti" }),
        el("button", { type: "button", class: "fn-pwa-btn fn-pwa-btn-primary",
          "data-pwa": "update-now", "data-testid": "update-now", text: "Update Sekarang" }),
      ]),
    ]);
    root().appendChild(card);
  }
  function checkVersion() {
    if (isReceipt() || !BUILD) return Promise.resolve();
    return fetchBranding().then(function (b) {
      latest = b && b.app_version ? String(b.app_version) : null;
      if (!latest || latest === BUILD) { hideUpdate(); return; }
      if (Date.now() < snoozedUntil || hasUnsavedInput()) return;
      showUpdate(latest);
    }).catch(function () { /* offline or server error: try again later */ });
  }
  pwa.checkVersion = checkVersion;
  function applyUpdate() {
    hideUpdate();
    var steps = [];
    if ("serviceWorker" in navigator) {
      steps.push(navigator.serviceWorker.getRegistrations().then(function (regs) {
        return Promise.all(regs.map(function (reg) {
          if (reg.waiting) reg.waiting.postMessage({ type: "SKIP_WAITING" });
          return reg.unregister();
        }));
      }));
    }
    if (window.caches) {
      steps.push(caches.keys().then(function (names) {
        return Promise.all(names.map(function (n) { return caches.delete(n); }));
      }));
    }
    // The reload fetches the new build from the network; it registers its own worker
    // and the splash shows the new version.
    return Promise.all(steps).catch(function () { /* reload anyway */ }).then(function () {
      window.location.reload();
    });
  }
  pwa.applyUpdate = applyUpdate;
  setInterval(function () { snoozedUntil = 0; checkVersion(); }, CHECK_INTERVAL_MS);
  window.addEventListener("focus", function () { checkVersion(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") checkVersion();
  });

  /* ---------- banner buttons (event delegation) ---------- */
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest && event.target.closest("[data-pwa]");
    if (!button) return;
    var action = button.getAttribute("data-pwa");
    if (action === "install") doInstall();
    else if (action === "install-dismiss") {
      try { localStorage.setItem(INSTALL_KEY, String(Date.now())); } catch (e) { /* private */ }
      hideInstall();
    } else if (action === "update-now") applyUpdate();
    else if (action === "update-later") {
      snoozedUntil = Date.now() + CHECK_INTERVAL_MS - 1000;
      hideUpdate();
    }
  });

  /* ---------- gestures ---------- */
  function dialogOpen() {
    return !!document.querySelector(
      "[role=dialog][data-state=open], [role=alertdialog][data-state=open], .fn-sheet[data-state=open]");
  }
  function scrolledInside(target) {
    for (var node = target; node && node !== document.body; node = node.parentElement) {
      if (node.scrollTop > 0) return true;
    }
    return false;
  }

  // Pull-to-refresh: only on pages with a refresh control, starting at the very top.
  var PTR_THRESHOLD = 70;
  var ptr = null;
  var indicator = null;
  function refreshControl() {
    return document.querySelector("[data-ptr-refresh]");
  }
  function syncPtrPage() {
    html.classList.toggle("fn-ptr", !!refreshControl());
  }
  function ptrIndicator() {
    if (!indicator || !indicator.isConnected) {
      indicator = el("div", { class: "fn-ptr-indicator", "data-testid": "ptr-indicator",
        "aria-hidden": "true" }, [el("span", { class: "fn-ptr-spinner" })]);
      root().appendChild(indicator);
    }
    return indicator;
  }
  document.addEventListener("touchstart", function (event) {
    syncPtrPage();
    if (event.touches.length !== 1 || !refreshControl() || dialogOpen()) return;
    var scroller = document.scrollingElement || document.documentElement;
    if (scroller.scrollTop > 0 || scrolledInside(event.target)) return;
    ptr = { y: event.touches[0].clientY, x: event.touches[0].clientX, dy: 0 };
  }, { passive: true });
  document.addEventListener("touchmove", function (event) {
    if (!ptr) return;
    var t = event.touches[0];
    ptr.dy = t.clientY - ptr.y;
    if (ptr.dy <= 0 || Math.abs(t.clientX - ptr.x) > ptr.dy) {
      if (indicator) indicator.classList.remove("fn-ptr-pulling", "fn-ptr-ready");
      return;
    }
    var node = ptrIndicator();
    var pull = Math.min(ptr.dy / 2, 90);
    node.style.setProperty("--fn-ptr-pull", pull + "px");
    node.classList.add("fn-ptr-pulling");
    node.classList.toggle("fn-ptr-ready", ptr.dy >= PTR_THRESHOLD);
  }, { passive: true });
  document.addEventListener("touchend", function () {
    if (!ptr) return;
    var pulled = ptr.dy >= PTR_THRESHOLD;
    ptr = null;
    if (!indicator) return;
    indicator.classList.remove("fn-ptr-pulling", "fn-ptr-ready");
    if (!pulled) return;
    var control = refreshControl();
    if (!control) return;
    indicator.classList.add("fn-ptr-refreshing");
    control.click();
    if (navigator.vibrate) { try { navigator.vibrate(10); } catch (e) { /* ignore */ } }
    setTimeout(function () { indicator.classList.remove("fn-ptr-refreshing"); }, 900);
  }, { passive: true });
  pwa.pullToRefresh = function () {
    var control = refreshControl();
    if (control) control.click();
    return !!control;
  };

  // Swipe back from the left edge: the installed app on iOS has no back gesture or button.
  var swipe = null;
  var EDGE = 24;
  function swipeBackEnabled() {
    return isIOS() && isStandalone();
  }
  document.addEventListener("touchstart", function (event) {
    swipe = null;
    if (!swipeBackEnabled() || event.touches.length !== 1 || dialogOpen()) return;
    var t = event.touches[0];
    if (t.clientX <= EDGE) swipe = { x: t.clientX, y: t.clientY, dx: 0, dy: 0 };
  }, { passive: true });
  document.addEventListener("touchmove", function (event) {
    if (!swipe) return;
    var t = event.touches[0];
    swipe.dx = t.clientX - swipe.x;
    swipe.dy = Math.abs(t.clientY - swipe.y);
  }, { passive: true });
  document.addEventListener("touchend", function () {
    var s = swipe;
    swipe = null;
    if (s && s.dx > 80 && s.dy < 50 && !dialogOpen() && window.history.length > 1) {
      window.history.back();
    }
  }, { passive: true });

  /* ---------- start ---------- */
  whenReady(function () {
    registerWorker();
    syncPtrPage();
    checkVersion();
    if (isIOS() && !isStandalone() && !isReceipt()) {
      fetchBranding().catch(function () { return null; }).then(function () {
        showInstall("ios");
      });
    }
  });
})();

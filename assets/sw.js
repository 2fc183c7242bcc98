/* FiberNode service worker (served at /sw.js, scope "/").
 *
 * Registered as /sw.js?v=<build version>: a new build is a new worker with
 * new cache names, and the old caches are deleted when it activates.
 *
 * - App shell (start page, SPA fallback and the files they load) precached on install.
 * - Hashed build files (/assets/...): cache first (their names change with their content).
 * - /icons/, /branding/ and other static files: cache first, revalidated in the background.
 * - Page navigations: network first, falling back to the cached page or the app shell.
 * - Never touched: Reflex's event websocket and uploads (/_event, /_upload), the REST API
 *   (/api/), health routes (/ping, /_health), the manifest (always revalidated by the
 *   browser), the uncached /branding/current/ redirects, non-GET and cross-origin requests.
 */
"use strict";

const VERSION = new URL(self.location.href).searchParams.get("v") || "dev";
const SHELL_CACHE = "fn-shell-" + VERSION;
const STATIC_CACHE = "fn-static-" + VERSION;
const MEDIA_CACHE = "fn-media-" + VERSION;
const OWN_CACHES = [SHELL_CACHE, STATIC_CACHE, MEDIA_CACHE];
const SHELL_PAGES = ["/", "/login", "/__spa-fallback.html"];
const SHELL_FILES = [
  "/styles.css", "/pwa.js", "/favicon.svg", "/logo.svg",
  "/icons/icon-192.png", "/icons/favicon-32.png",
];
const FALLBACK = "/__spa-fallback.html";
const BYPASS = [
  /^\/_event(\/|$)/, /^\/_upload(\/|$)/, /^\/api(\/|$)/, /^\/ping(\/|$)/,
  /^\/_health(\/|$)/, /^\/manifest\.webmanifest$/, /^\/sw\.js$/,
  /^\/branding\/current\//,
];

function bypassed(url) {
  return BYPASS.some((re) => re.test(url.pathname));
}

/** URLs of the scripts and stylesheets a page's HTML loads. */
function referencedFiles(html) {
  const found = new Set();
  const re = /(?:href|src)="(\/(?:assets|icons)\/[^"?#]+)"/g;
  let m;
  while ((m = re.exec(html)) !== null) found.add(m[1]);
  return [...found];
}

async function precache() {
  const cache = await caches.open(SHELL_CACHE);
  const files = new Set(SHELL_FILES);
  for (const page of SHELL_PAGES) {
    try {
      const res = await fetch(page, { cache: "no-cache", credentials: "same-origin" });
      if (!res.ok) continue;
      await cache.put(page, res.clone());
      for (const f of referencedFiles(await res.text())) files.add(f);
    } catch (e) {
      /* offline while installing: the runtime caches fill later */
    }
  }
  await Promise.all([...files].map(async (f) => {
    try {
      const res = await fetch(f, { cache: "no-cache" });
      if (res.ok) await cache.put(f, res);
    } catch (e) { /* ignore */ }
  }));
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((n) => n.startsWith("fn-") && !OWN_CACHES.includes(n))
      .map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "SKIP_WAITING") self.skipWaiting();
  if (data.type === "GET_VERSION" && event.source) {
    event.source.postMessage({ type: "VERSION", version: VERSION });
  }
});

async function cacheFirst(request, cacheName) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const res = await fetch(request);
  if (res.ok && res.type === "basic") {
    const cache = await caches.open(cacheName);
    cache.put(request, res.clone());
  }
  return res;
}

async function staleWhileRevalidate(request, cacheName, event) {
  const cache = await caches.open(cacheName);
  const cached = await caches.match(request);
  const refresh = fetch(request).then((res) => {
    if (res.ok && res.type === "basic") cache.put(request, res.clone());
    return res;
  });
  if (cached) {
    event.waitUntil(refresh.catch(() => undefined));
    return cached;
  }
  return refresh;
}

async function networkFirstPage(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const res = await fetch(request);
    // Receipt links carry a token: not kept on the device.
    const url = new URL(request.url);
    if (res.ok && res.type === "basic" && !url.pathname.startsWith("/receipt/")) {
      cache.put(request, res.clone());
    }
    return res;
  } catch (err) {
    const url = new URL(request.url);
    const cached = (await cache.match(request, { ignoreSearch: true }))
      || (await cache.match(url.pathname.replace(/\/$/, "") || "/"))
      || (await cache.match(FALLBACK))
      || (await cache.match("/"));
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (bypassed(url)) return;
  if (request.headers.get("upgrade")) return;

  if (request.mode === "navigate") {
    event.respondWith(networkFirstPage(request));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(cacheFirst(request, STATIC_CACHE));
  } else if (url.pathname.startsWith("/icons/") || url.pathname.startsWith("/branding/")) {
    event.respondWith(staleWhileRevalidate(request, MEDIA_CACHE, event));
  } else if (/\.(css|js|svg|png|webp|ico|woff2?)$/.test(url.pathname)) {
    event.respondWith(staleWhileRevalidate(request, STATIC_CACHE, event));
  }
});

// A tiny service worker for the harness self-test: answers /sw-hello
// itself, forwards /sw-upstream to the server as its own request, and
// throws on /sw-throw.
const startedAt = Date.now();
console.log('sw: started at', startedAt);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => {
  const path = new URL(e.request.url).pathname;
  if (path === '/sw-hello') {
    console.log('sw: answering /sw-hello, started at', startedAt);
    e.respondWith(new Response('hello from the service worker', {headers: {'Content-Type': 'text/plain'}}));
  } else if (path === '/sw-upstream') {
    e.respondWith(fetch('/ua?from=sw'));
  } else if (path === '/sw-throw') {
    setTimeout(() => { throw new Error('sw boom'); });
    e.respondWith(new Response('thrown'));
  }
});

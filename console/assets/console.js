// The console's only script, served from /ui/assets/ (the Content-Security-Policy allows no
// other). A page whose <main> carries data-live="MILLISECONDS" shows things still running: it
// asks the same URL for its live part again at that period and swaps it in, so a page left
// open follows the jobs without a full reload. The HTML comes from our own server, escaped
// there; a script inside it would not run (innerHTML never runs scripts, and the CSP forbids
// inline ones anyway).
'use strict';
(function () {
  const main = document.getElementById('live');
  if (!main || !main.dataset.live) return;
  const period = Math.max(500, Number(main.dataset.live) || 3000);
  const status = document.getElementById('live-status');
  let refreshes = 0;
  let busy = false;

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(window.location.href, {
        headers: { 'X-Jobtrail-Fragment': '1' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      main.innerHTML = await response.text();
      refreshes += 1;
      main.dataset.refreshes = String(refreshes);
      if (status) status.textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (error) {
      if (status) status.textContent = 'not updated: ' + error.message;
    } finally {
      busy = false;
    }
  }

  window.setInterval(refresh, period);
  document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });
})();

// Mitra console: the indicator editor checks its pattern as one types
// and tests it against pasted sample events. No framework, no build step.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  var pattern = document.getElementById('pattern');
  if (!pattern) return;
  var status = document.getElementById('pattern-status');
  var caret = document.getElementById('pattern-caret');
  var timer = null, seq = 0;

  function post(path, body) {
    return fetch(path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  // showCaret marks the error's character under the line that holds it.
  function showCaret(res) {
    if (res.valid || res.pos < 0) { caret.textContent = ''; return; }
    var chars = Array.from(pattern.value);
    var before = chars.slice(0, res.pos).join('');
    var lineStart = before.lastIndexOf('\n') + 1;
    var lineEnd = pattern.value.indexOf('\n', before.length);
    var line = pattern.value.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
    var col = Array.from(before.slice(lineStart)).length;
    caret.textContent = line + '\n' + ' '.repeat(col) + '^' + (res.detail ? '' : '');
    caret.setAttribute('title', res.detail || '');
  }

  function check() {
    var mine = ++seq;
    if (pattern.value.trim() === '') { status.textContent = ''; status.dataset.valid = ''; caret.textContent = ''; return; }
    post('/console/api/pattern', { pattern: pattern.value }).then(function (res) {
      if (mine !== seq) return;
      status.textContent = res.message;
      status.dataset.valid = res.valid ? 'true' : 'false';
      status.dataset.pos = String(res.pos);
      showCaret(res);
    });
  }

  pattern.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(check, 200);
  });
  if (pattern.value.trim() !== '') check();

  var test = document.getElementById('test');
  var events = document.getElementById('events');
  var result = document.getElementById('test-result');
  if (test) {
    test.addEventListener('click', function () {
      var parsed;
      try { parsed = JSON.parse(events.value); } catch (e) { parsed = null; }
      post('/console/api/pattern/test', { pattern: pattern.value, events: parsed }).then(function (res) {
        result.textContent = res.message;
        result.dataset.matched = res.matched === true ? 'true' : (res.matched === false ? 'false' : '');
        result.className = res.matched ? 'ok' : (res.valid ? '' : 'error');
      });
    });
  }
})();

// One HTTP request, for the Glide stand-in's synchronous calls: reads
// {method, url, headers, body, timeout_ms} as JSON on stdin, prints {status, body, error}.
'use strict';

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', async () => {
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  let answer;
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body === null ? undefined : request.body,
      signal: AbortSignal.timeout(request.timeout_ms),
    });
    answer = { status: response.status, body: await response.text(), error: '' };
  } catch (e) {
    const cause = e && e.cause ? e.cause.message || String(e.cause) : '';
    answer = { status: 0, body: '', error: cause || String(e) };
  }
  process.stdout.write(JSON.stringify(answer));
});

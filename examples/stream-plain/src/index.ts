import type { InvocationContext } from '@pilotlight/sdk';

/**
 * A plain function on the Web Fetch API that streams its response: one line per item as it is
 * produced (here, every 10 ms), so the client sees the first line before the last is made.
 */
export default function countdown(request: Request, ctx: InvocationContext): Response {
  const from = Number(new URL(request.url).searchParams.get('from') ?? 5);
  let n = from;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (n < 0) {
        ctx.logger.info({ from }, 'countdown streamed');
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(`${n}\n`));
      n -= 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

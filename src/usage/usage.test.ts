import { describe, expect, it } from 'vitest';
import { generatedChars } from './estimate.js';
import { ChatStreamMeter, chatUsage, responsesUsage } from './openai.js';
import { parseSseEvent, SseSplitter } from './sse.js';

describe('SseSplitter', () => {
  it('returns whole events, byte for byte, across chunk boundaries', () => {
    const splitter = new SseSplitter();
    const stream = 'data: {"a":1}\n\nevent: x\ndata: é\r\n\r\ndata: [DONE]\n\n';
    const bytes = Buffer.from(stream);
    const events: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 3)
      events.push(...splitter.push(bytes.subarray(i, i + 3)));

    expect(Buffer.concat(events).toString()).toBe(stream);
    expect(events.map((e) => parseSseEvent(e))).toEqual([
      { type: 'message', data: '{"a":1}' },
      { type: 'x', data: 'é' },
      { type: 'message', data: '[DONE]' },
    ]);
    expect(splitter.rest().length).toBe(0);
  });

  it('keeps an unfinished event as the rest', () => {
    const splitter = new SseSplitter();
    expect(splitter.push(Buffer.from('data: {"partial"'))).toEqual([]);
    expect(splitter.rest().toString()).toBe('data: {"partial"');
  });
});

describe('usage fields', () => {
  it('reads OpenAI chat usage, cached tokens subtracted from the prompt', () => {
    const usage = {
      prompt_tokens: 1000,
      completion_tokens: 50,
      prompt_tokens_details: { cached_tokens: 400 },
    };
    expect(chatUsage(usage)).toEqual({ uncached_input: 600, cached_input: 400, output: 50 });
  });

  it("reads DeepSeek's cache hit and miss fields", () => {
    const usage = {
      prompt_tokens: 1000,
      completion_tokens: 50,
      prompt_cache_hit_tokens: 300,
      prompt_cache_miss_tokens: 700,
    };
    expect(chatUsage(usage)).toEqual({ uncached_input: 700, cached_input: 300, output: 50 });
    expect(chatUsage({ prompt_cache_hit_tokens: 3, prompt_cache_miss_tokens: 7 })).toEqual({
      uncached_input: 7,
      cached_input: 3,
      output: 0,
    });
  });

  it('reads Responses usage, whose input includes the cached tokens', () => {
    const usage = {
      input_tokens: 900,
      input_tokens_details: { cached_tokens: 100 },
      output_tokens: 9,
    };
    expect(responsesUsage(usage)).toEqual({ uncached_input: 800, cached_input: 100, output: 9 });
  });
});

describe('ChatStreamMeter', () => {
  const event = (data: unknown) => Buffer.from(`data: ${JSON.stringify(data)}\n\n`);
  const usage = { prompt_tokens: 10, completion_tokens: 2 };

  it('drops the usage chunk the gateway asked for, and holds [DONE]', () => {
    const meter = new ChatStreamMeter(true);
    expect(meter.inspect(event({ choices: [{ delta: { content: 'hi' } }], usage: null }))).toEqual({
      kind: 'forward',
    });
    expect(meter.inspect(event({ choices: [], usage }))).toEqual({ kind: 'drop' });
    expect(meter.inspect(Buffer.from('data: [DONE]\n\n'))).toEqual({ kind: 'hold' });
    expect(meter.reported()).toEqual({ uncached_input: 10, cached_input: 0, output: 2 });
    expect(meter.outputChars()).toBe(2);
  });

  it('strips usage from a chunk that also carries content', () => {
    const meter = new ChatStreamMeter(true);
    const action = meter.inspect(event({ choices: [{ delta: { content: 'x' } }], usage }));
    expect(action.kind).toBe('replace');
    const replaced = action.kind === 'replace' ? action.bytes.toString() : '';
    expect(JSON.parse(replaced.slice(6))).toEqual({ choices: [{ delta: { content: 'x' } }] });
  });

  it('forwards the usage chunk to a client that asked for it', () => {
    const meter = new ChatStreamMeter(false);
    expect(meter.inspect(event({ choices: [], usage }))).toEqual({ kind: 'forward' });
    expect(meter.reported()?.output).toBe(2);
  });
});

describe('generatedChars', () => {
  it('counts the text of content, reasoning and tool-call arguments without parsing', () => {
    const chunk = JSON.stringify({
      choices: [
        {
          delta: {
            content: 'héllo',
            reasoning_content: 'why',
            tool_calls: [{ function: { name: 'f', arguments: '{"a":1}' } }],
          },
        },
      ],
      model: 'content-free',
    });
    // '{"a":1}' is written with its quotes escaped inside the chunk: 9 characters, as written.
    expect(generatedChars(chunk)).toBe(5 + 3 + 9);
    expect(generatedChars('{"choices":[{"delta":{"role":"assistant"}}]}')).toBe(0);
  });
});

describe('parseSseEvent', () => {
  it('reads a one-line data event, with LF or CRLF, like any other', () => {
    expect(parseSseEvent(Buffer.from('data: {"a":1}\n\n'))).toEqual({
      type: 'message',
      data: '{"a":1}',
    });
    expect(parseSseEvent(Buffer.from('data:x\n\n'))).toEqual({ type: 'message', data: 'x' });
    expect(parseSseEvent(Buffer.from('data: a\ndata: b\n\n'))).toEqual({
      type: 'message',
      data: 'a\nb',
    });
    expect(parseSseEvent(Buffer.from('event: e\ndata: z\n\n'))).toEqual({ type: 'e', data: 'z' });
  });
});

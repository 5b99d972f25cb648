/**
 * Token counts for a 200 response that carried no usage. The gateway has no tokenizer for
 * LongCat, so it counts characters of text and assumes four per token, the common rule of thumb
 * for English with BPE tokenizers. Such records are marked `estimated` and counted in a metric.
 */
const CHARS_PER_TOKEN = 4;

/** Field names whose string values are generated or prompted text in the three API formats. */
const TEXT_FIELDS = new Set([
  'content',
  'text',
  'arguments',
  'reasoning_content',
  'thinking',
  'partial_json',
  'input',
  'instructions',
  'delta',
  'refusal',
]);

export function tokensForChars(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

/** A JSON string value of a field that carries generated text in a chat completion chunk. */
const GENERATED_TEXT = /"(?:content|reasoning_content|arguments|refusal)":\s*"((?:[^"\\]|\\.)*)"/g;

/**
 * Characters of generated text in one raw chat chunk, found without parsing it. An escape
 * sequence counts as the characters written, which is close enough for an estimate.
 */
export function generatedChars(json: string): number {
  let chars = 0;
  for (const match of json.matchAll(GENERATED_TEXT)) chars += (match[1] as string).length;
  return chars;
}

/** Characters of text in a parsed JSON value: strings under the text fields, at any depth. */
export function textChars(value: unknown, underTextField = false): number {
  if (typeof value === 'string') return underTextField ? value.length : 0;
  if (Array.isArray(value)) {
    let sum = 0;
    for (const item of value) sum += textChars(item, underTextField);
    return sum;
  }
  if (value === null || typeof value !== 'object') return 0;

  let sum = 0;
  for (const [field, inner] of Object.entries(value)) {
    sum += textChars(inner, underTextField || TEXT_FIELDS.has(field));
  }
  return sum;
}

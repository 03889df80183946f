// ocr_flags: flags the OCR lines that match configured patterns (prices, plate numbers, ...),
// a pipeline node written in JavaScript (built by componentize-js, scripts/build-js-plugins.sh).
//
// Input: the `ocr` result, {"text":[{"text","score","box"}]}, from the ocr_assemble node.
// Config: {"patterns": {"NAME": "JavaScript regular expression", ...}}, at least one, at most
// 32, each at most 256 characters; matched case-sensitively against each line's text.
// Output: the OCR result with "flags" added, one per match, in line order then pattern order:
//   {"text":[...], "flags":[{"pattern":"price","match":"$18.40","line":0}]}
// ("line" indexes "text"). A bad config fails init (invalid-config: the pipeline fails its
// load check with the reason); an input that is not the OCR JSON fails the frame (invalid-input).

const MAX_PATTERNS = 32;
const MAX_PATTERN_CHARS = 256;

let patterns = [];

function fail(tag, message) {
  // componentize-js maps a thrown non-Error value onto the export's `result` error.
  throw { tag, val: message };
}

export const node = {
  // streamhost:node@0.2.0: the kinds this node takes and gives, checked against the manifest's
  // edges when the pipeline loads.
  describe() {
    return { takes: ["json"], gives: ["json"] };
  },

  init(config) {
    let parsed;
    try {
      parsed = JSON.parse(config);
    } catch (e) {
      fail("invalid-config", `config is not JSON: ${e}`);
    }
    const table = parsed && parsed.patterns;
    if (!table || typeof table !== "object" || Array.isArray(table)) {
      fail("invalid-config", "config needs `patterns = { NAME = \"regex\", ... }`");
    }
    const names = Object.keys(table);
    if (names.length === 0 || names.length > MAX_PATTERNS) {
      fail("invalid-config", `patterns: give 1 to ${MAX_PATTERNS}, got ${names.length}`);
    }
    patterns = names.map((name) => {
      const source = table[name];
      if (typeof source !== "string" || source.length === 0 || source.length > MAX_PATTERN_CHARS) {
        fail("invalid-config", `pattern '${name}' must be a regex of 1-${MAX_PATTERN_CHARS} characters`);
      }
      try {
        return { name, re: new RegExp(source, "g") };
      } catch (e) {
        fail("invalid-config", `pattern '${name}' is not a valid regex: ${e.message}`);
      }
    });
  },

  process(_frame, inputs) {
    const input = inputs.length === 1 ? inputs[0].value : null;
    if (!input || input.tag !== "json") {
      fail("invalid-input", "expects one input: the ocr result (json)");
    }
    let result;
    try {
      result = JSON.parse(input.val);
    } catch (e) {
      fail("invalid-input", `input is not JSON: ${e}`);
    }
    if (!result || !Array.isArray(result.text)) {
      fail("invalid-input", "input has no `text` array (is it the ocr result?)");
    }
    const flags = [];
    result.text.forEach((line, index) => {
      const text = typeof line.text === "string" ? line.text : "";
      for (const { name, re } of patterns) {
        re.lastIndex = 0;
        for (const m of text.matchAll(re)) {
          if (m[0].length > 0) flags.push({ pattern: name, match: m[0], line: index });
        }
      }
    });
    return { tag: "json", val: JSON.stringify({ text: result.text, flags }) };
  },
};

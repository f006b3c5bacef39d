# The sentencepiece peer for the C# parity tests: Google's sentencepiece through Debian's
# python3-sentencepiece (run with /usr/bin/python3; the python3 first on PATH may lack the module).
# Usage:
#   sentencepiece_peer.py train TEXTS_FILE MODEL_PREFIX BYTE_FALLBACK USER_DEFINED
#       trains a BPE model on TEXTS_FILE (one JSON string per line, split into lines for training) with
#       Llama 2's trainer settings; BYTE_FALLBACK is true/false; USER_DEFINED a comma-separated list or "".
#   sentencepiece_peer.py encode MODEL INPUT_FILE   each line a JSON string -> a JSON array of ids per line
#   sentencepiece_peer.py decode MODEL INPUT_FILE   each line a JSON array of ids -> the JSON string per line
import json
import sys

import sentencepiece as spm


def main():
    mode = sys.argv[1]
    if mode == 'train':
        texts_file, prefix, byte_fallback, user_defined = sys.argv[2:6]
        lines = (line for text in read_json_lines(texts_file) for line in text.split('\n') if line.strip())
        # Llama 2's settings (its tokenizer.model's trainer_spec), on a small vocabulary.
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines, model_prefix=prefix, model_type='bpe', vocab_size=4000,
            byte_fallback=byte_fallback == 'true', split_digits=True, allow_whitespace_only_pieces=True,
            normalization_rule_name='identity', remove_extra_whitespaces=byte_fallback != 'true',
            user_defined_symbols=[s for s in user_defined.split(',') if s], character_coverage=0.9995,
            num_threads=2, minloglevel=2)
        return
    processor = spm.SentencePieceProcessor(model_file=sys.argv[2])
    run = {'encode': lambda text: processor.encode(text), 'decode': lambda ids: processor.decode(ids)}[mode]
    out = [json.dumps(run(value)) for value in read_json_lines(sys.argv[3])]
    sys.stdout.write(''.join(line + '\n' for line in out))


def read_json_lines(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


main()

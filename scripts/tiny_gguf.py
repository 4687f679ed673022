#!/usr/bin/env python3
"""Writes tiny llama.cpp models and LoRA adapters (GGUF, random F32 weights) for the tests.

A llama-architecture model of 2 layers, 64-wide embeddings, 4 heads, a 128-wide FFN and a
2048-token context, with a generated SentencePiece-style vocabulary (about 0.5 MB): it loads in
llama-server and answers completions with gibberish. An adapter is a rank-4 LoRA on every
layer's attn_q (about 9 KB) and really changes the output at temperature 0.

Usage: tiny_gguf.py model PATH [--seed N] [--width W --layers L]
       tiny_gguf.py lora PATH [--seed N]
Needs the PyPI `gguf` package (scripts/setup.sh installs it in .build/tools/venv).
"""
import argparse

import gguf
import numpy as np

N_HEAD, N_CTX, RANK = 4, 2048, 4
N_EMBD, N_LAYER = 64, 2  # --width and --layers change them (a larger model loads for longer)


def vocabulary():
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    pieces = [chr(c) for c in range(33, 127)] + ["\u2581" + chr(c) for c in range(97, 123)] + ["\u2581"]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def write_model(path, seed):
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny-test-model")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(2 * N_EMBD)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")

    n_ff = 2 * N_EMBD

    def weight(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    n_vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, N_EMBD))
    for layer in range(N_LAYER):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + name + ".weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weight(n_ff, N_EMBD))
        writer.add_tensor(prefix + "ffn_up.weight", weight(n_ff, N_EMBD))
        writer.add_tensor(prefix + "ffn_down.weight", weight(N_EMBD, n_ff))
    finish(writer)


def write_lora(path, seed):
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(RANK))
    for layer in range(N_LAYER):
        name = f"blk.{layer}.attn_q.weight"
        # ne {n_in, r} and {r, n_out}: numpy shapes are the reverse.
        writer.add_tensor(name + ".lora_a", (rng.standard_normal((RANK, N_EMBD)) * 0.5).astype(np.float32))
        writer.add_tensor(name + ".lora_b", (rng.standard_normal((N_EMBD, RANK)) * 0.5).astype(np.float32))
    finish(writer)


def finish(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    global N_EMBD, N_LAYER
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["model", "lora"])
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=N_EMBD, help="embedding width, a multiple of 4 (model only)")
    parser.add_argument("--layers", type=int, default=N_LAYER, help="layers (model only)")
    args = parser.parse_args()
    N_EMBD, N_LAYER = args.width, args.layers
    (write_model if args.kind == "model" else write_lora)(args.path, args.seed)


if __name__ == "__main__":
    main()

"""Synthetic conversations, so that the model learns its chat format: questions asked in a few
phrasings, answered with text from the packages (WordNet definitions, Jargon File entries,
fortunes). A demonstration of the format, not of knowledge: the answers are dictionary text.
"""

import re

import corpus_sources

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer briefly.",
    "You are a friendly assistant who answers in plain English.",
]

NOUN_QUESTIONS = ["What is {w}?", "What is a {w}?", "What does {w} mean?", "Define {w}.",
                  "Can you tell me what {w} is?", "Explain {w}.", "What is the meaning of {w}?"]
VERB_QUESTIONS = ["What does it mean to {w}?", "What does {w} mean?", "Define the verb {w}.",
                  "What does the verb {w} mean?"]
ADJ_QUESTIONS = ["What does {w} mean?", "Define {w}.", "What is the meaning of the word {w}?"]
JARGON_QUESTIONS = ["What does {w} mean in hacker slang?", "What is {w}?", "Explain the term {w}.",
                    "In the Jargon File, what is {w}?"]
FORTUNE_REQUESTS = {
    "humorists": ["Tell me a joke.", "Say something funny.", "Make me laugh."],
    "wisdom": ["Tell me something wise.", "Give me some advice.", "Share a piece of wisdom."],
    "literature": ["Give me a quote from literature.", "Quote a famous writer."],
    "people": ["Tell me a famous quote.", "Give me a quote."],
    "riddles": ["Tell me a riddle.", "Do you know a riddle?"],
}
DEFAULT_FORTUNE_REQUESTS = ["Tell me a fortune.", "Give me a quote.", "Say something interesting.",
                            "Tell me something."]
FOLLOW_UPS = ["Another one, please.", "Tell me another.", "One more?", "And another one?"]


def acceptable(text):
    return 20 <= len(text) <= 800 and "<|" not in text and "|>" not in text


def with_system(rng, messages):
    """A third of the conversations start with a system prompt."""
    if rng.random() < 1 / 3:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] + messages
    return messages


def turn(question, answer):
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def wordnet_chats(root, rng, fraction=0.35):
    out = []
    for pos, lemmas, definition, examples in corpus_sources.wordnet_synsets(root):
        if rng.random() >= fraction:
            continue
        answer = corpus_sources.wordnet_sentence(pos, lemmas, definition, examples)
        if not acceptable(answer):
            continue
        word = lemmas[0]
        questions = {"n": NOUN_QUESTIONS, "v": VERB_QUESTIONS}.get(pos, ADJ_QUESTIONS)
        q = rng.choice(questions)
        if q == "What is a {w}?" and (word[:1].isupper() or not answer.startswith(word[:1].upper() + word[1:] + " is a")):
            q = "What is {w}?"
        out.append(with_system(rng, turn(q.format(w=word), answer)))
    return out


def jargon_chats(root, rng):
    out = []
    for term, defs in corpus_sources.jargon_entries(root):
        answer = " ".join(" ".join(d.split()) for d in defs[:2])
        answer = re.sub(r"^\d+\.\s*", "", answer)
        if acceptable(answer):
            out.append(with_system(rng, turn(rng.choice(JARGON_QUESTIONS).format(w=term), answer)))
    return out


def fortune_chats(root, rng):
    by_collection = {}
    for name, entry in corpus_sources.fortune_entries(root):
        text = corpus_sources.fortune_paragraph(entry)
        if acceptable(text) and sum(c.isalpha() for c in text) > 0.6 * len(text):
            by_collection.setdefault(name, []).append(text)
    out = []
    for name, texts in by_collection.items():
        requests = FORTUNE_REQUESTS.get(name, DEFAULT_FORTUNE_REQUESTS)
        i = 0
        while i < len(texts):
            # One to three fortunes per conversation, follow-ups asking for more.
            n = min(len(texts) - i, rng.choice([1, 1, 2, 3]))
            messages = turn(rng.choice(requests), texts[i])
            for k in range(1, n):
                messages += turn(rng.choice(FOLLOW_UPS), texts[i + k])
            out.append(with_system(rng, messages))
            i += n
    return out


def for_package(package, root, rng):
    """The conversations made from one package (none for most)."""
    if package == "wordnet-base":
        return wordnet_chats(root, rng)
    if package == "jargon-text":
        return jargon_chats(root, rng)
    if package in ("fortunes", "fortunes-min"):
        return fortune_chats(root, rng)
    return []

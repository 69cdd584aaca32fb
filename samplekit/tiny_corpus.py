"""The built-in corpus the tiny tokenizers (E5's WordPiece, Gemma-3's BPE) are trained on, offline.

It covers the words memo's prompts and rationales use (ads, brands, humour, emotion, banks, finance,
memorability, ratings, digits), so tokenised prompts are realistic sequences of whole-word pieces
rather than strings of characters.
"""

from __future__ import annotations

__all__ = ["CORPUS", "corpus_lines"]

CORPUS: tuple[str, ...] = (
    "This video ad shows a young family laughing together in a bright kitchen.",
    "The brand logo appears at the end of the commercial with a short slogan.",
    "A funny advertisement for a bank uses a talking dog to explain savings accounts.",
    "Viewers remembered the humor, the catchy jingle and the colourful characters.",
    "The insurance company tells an emotional story about a father and his daughter.",
    "Memorability is the probability that a viewer recognises the ad again days later.",
    "Short term memorability is measured minutes after watching; long term after one or two days.",
    "Rate how memorable this ad is on a scale from 0 to 10. Rating: 7/10",
    "Rating: 3/10. The ad is generic, slow and forgettable, with no clear brand.",
    "Rating: 9/10. A surprising twist, strong emotion and a famous actor make it stick.",
    "Score: 0.85 out of 1.00; the model predicts a high recognition rate.",
    "The numbers are 0 1 2 3 4 5 6 7 8 9 10 100 2024 and 30 seconds.",
    "Explain why the video is or is not memorable in two or three sentences.",
    "The narrator speaks in a calm, warm voice while soft piano music plays.",
    "Loud electronic music, fast cuts and bright neon colours fill the screen.",
    "A car drives along a coastal road at sunset; the camera follows from above.",
    "The soft drink brand shows friends at the beach sharing cold bottles.",
    "A sports shoe commercial features an athlete running through a rainy city at night.",
    "The phone ad highlights the camera, the battery and the new design.",
    "Fast food restaurant ad: a burger, fries and a milkshake on a red table.",
    "The airline promises cheap flights, friendly staff and comfortable seats.",
    "A cosmetics brand presents a new lipstick with close ups of smiling faces.",
    "The beer commercial is set in a crowded bar during a football match.",
    "Financial services, credit cards, loans, mortgages and investment funds are advertised.",
    "Personal finance, banks, banking fees, interest, stocks, bonds and the economy.",
    "The bank offers low interest rates, online banking and a mobile app.",
    "Money, budget, payment, account, deposit, pension and retirement planning.",
    "The message is trust, security and stability for your savings.",
    "Humor works when the joke is simple, unexpected and linked to the product.",
    "Emotion: joy, sadness, surprise, fear, anger, disgust, nostalgia, pride and love.",
    "Happy people dance in the street; the mood is cheerful and energetic.",
    "A sad scene shows an old man alone at home before his grandson calls.",
    "The story is touching, sincere and a little bit nostalgic.",
    "The ad is boring, confusing and too long; the product is hard to identify.",
    "Celebrities, animals, babies and cartoon characters attract attention.",
    "The visual scene contains a woman, a man, a child, a cat and a blue sky.",
    "Objects in the frame: table, chair, window, laptop, coffee cup, bicycle, tree.",
    "Indoor office, outdoor park, mountain, forest, river, ocean, snow and desert.",
    "The caption describes what happens in each shot of the video clip.",
    "Audio features: speech, music, silence, laughter, applause, singing and noise.",
    "Visual features: colour, brightness, motion, faces, text on screen and objects.",
    "The text encoder turns captions and titles into sentence embeddings.",
    "Predict the memorability score of the video from its frames, audio and text.",
    "Spearman correlation between predicted and ground truth scores is the metric.",
    "The dataset has training, development and test splits with annotations.",
    "Each participant watched a sequence of videos and pressed a key on repeats.",
    "Brand recall, brand recognition, awareness, purchase intention and attitude.",
    "Marketing campaign, target audience, television, online video, social media.",
    "The first seconds matter: an early brand reveal helps people remember.",
    "A strong logo, a clear product shot and a memorable tagline improve recall.",
    "Unique, original, creative and distinctive ads are easier to remember.",
    "Repetition of the brand name and the jingle increases memory.",
    "The question: how memorable is this advertisement? Answer with a number.",
    "The answer is a rating between 1 and 10 followed by a short reason.",
    "User: describe the ad. Model: the ad shows a bank and a smiling couple.",
    "System: you are an expert in advertising and human memory.",
    "Good, bad, great, poor, excellent, average, weak, strong, high, low.",
    "Very, quite, rather, not, never, always, often, sometimes, usually.",
    "It was a cold winter morning and the children played in the snow.",
    "She opened the door, looked outside and smiled at the postman.",
    "They bought a new house near the school and the supermarket.",
    "He works at a large bank in the financial district of London.",
    "Prices rose, the market fell and investors worried about inflation.",
    "The charity ad asks for donations to help families in need.",
    "A gaming console ad shows teenagers cheering in front of a big screen.",
    "The streaming service promotes new movies, series and documentaries.",
    "A supermarket offers fresh fruit, vegetables, bread, cheese and wine.",
    "The travel agency shows hotels, islands, palm trees and swimming pools.",
    "Chocolate, candy, ice cream, cereal, yogurt and orange juice.",
    "Electric cars, batteries, charging stations and clean energy.",
    "Telecom operator, internet speed, contract, price and coverage.",
    "Clothing, fashion, jeans, shirts, dresses, jackets and shoes.",
)


def corpus_lines(repeat: int = 3) -> list[str]:
    """The corpus with lower-case and single-digit variants, repeated so frequent words merge."""
    lines = list(CORPUS) + [s.lower() for s in CORPUS]
    lines += [f"Rating: {i}/10" for i in range(11)] + [f"Score: 0.{i}{9 - i}" for i in range(10)]
    return lines * repeat

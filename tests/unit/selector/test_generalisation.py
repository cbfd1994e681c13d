"""Generalisation: a varied CivitAI-like library and prompts written the way users write them.

Every LoRA carries a *concept label* that lives only in this test (never in its metadata): the
expectations say which concepts a prompt should get (`want`), which are acceptable (`ok`), and
everything else is a wrong pick. Each prompt is planned once with the automatic checkpoint and
once on a pinned checkpoint of each family (SD 1.5, SDXL, Pony, Flux), so the same concept is
judged on the LoRAs each family offers. File names are deliberately misleading or meaningless.

Precision (no wrong LoRA) is asserted strictly; recall (wanted concepts stacked wherever a
compatible LoRA for them exists) reasonably. `python tests/unit/selector/test_generalisation.py`
prints the figures and every miss.
"""
from __future__ import annotations

import dataclasses
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pytest

from intelligent_pipeline.metadata.records import ModelRecord
from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.analysis import analyze_keywords
from intelligent_pipeline.selector.compat import lora_compatibility
from intelligent_pipeline.selector.scoring import elderly_terms

GB = 1_000_000_000
SD15, SDXL, PONY, FLUX = "SD 1.5", "SDXL 1.0", "Pony", "Flux.1 D"
_ARCH = {SD15: "sd1", SDXL: "sdxl", PONY: "sdxl", FLUX: "flux"}
_FOLDER = {"checkpoint": "checkpoints", "lora": "loras", "vae": "vae", "diffusion_model": "diffusion_models",
           "text_encoder": "text_encoders"}

CONCEPT: dict[str, str] = {}  # LoRA name -> concept label (test-only knowledge)
CKPT_LABEL: dict[str, str] = {}  # checkpoint name -> label


def _rec(name: str, kind: str, **kw: Any) -> ModelRecord:
    return ModelRecord(name=name, kind=kind, path=f"/models/{_FOLDER[kind]}/{name}", **kw)


def lora(name: str, concept: str, base: str, title: str, tags: tuple[str, ...] = (),
         triggers: tuple[str, ...] = (), desc: str = "", dl: int = 20_000, **kw: Any) -> ModelRecord:
    CONCEPT[name] = concept
    return _rec(name, "lora", architecture=_ARCH[base], base_model=base, title=title, tags=tags,
                trigger_words=triggers, description=desc, downloads=dl, likes=dl // 20, **kw)


def ckpt(name: str, label: str, base: str, title: str, tags: tuple[str, ...], desc: str = "", dl: int = 100_000,
         kind: str = "checkpoint", **kw: Any) -> ModelRecord:
    CKPT_LABEL[name] = label
    size = {SD15: 2.1, SDXL: 6.9, PONY: 6.9, FLUX: 23.8}[base]
    if kind == "checkpoint":
        kw.setdefault("has_vae", True)
    return _rec(name, kind, architecture=_ARCH[base], base_model=base, title=title, tags=tags, description=desc,
                downloads=dl, likes=dl // 20, size=int(size * GB), **kw)


def build_library() -> list[ModelRecord]:
    return [
        # --- checkpoints -----------------------------------------------------------------------
        ckpt("ckpt_a1.safetensors", "real15", SD15, "PhotoReal Dream v7",
             ("photorealistic", "realistic", "photography", "portraits", "base model"),
             "Photorealistic people and places, like a RAW photo from a DSLR.", 700_000),
        ckpt("ckpt_b2.safetensors", "anime15", SD15, "Pastel Anime Mix",
             ("anime", "illustration", "manga", "girl", "base model"),
             "A soft pastel anime model for characters and cute scenes.", 400_000),
        ckpt("ckpt_c3.safetensors", "paint15", SD15, "Brushwork Classic",
             ("painting", "oil painting", "artistic", "impressionism", "traditional media"),
             "Painterly images with visible brush strokes, from oil to watercolor.", 60_000),
        ckpt("ckpt_d4.safetensors", "realxl", SDXL, "JuggerReal XL",
             ("photorealistic", "photography", "cinematic", "base model", "realistic"),
             "Cinematic photorealism for SDXL.", 800_000),
        ckpt("ckpt_e5.safetensors", "3dxl", SDXL, "DreamForge 3D XL",
             ("3d", "3d render", "cgi", "stylized", "pixar", "cartoon"),
             "Stylised 3D renders and cute CGI characters.", 90_000),
        ckpt("ckpt_f6.safetensors", "pony", PONY, "Pony Diffusion V6 XL",
             ("base model", "pony", "anime", "cartoon", "furry"),
             "A versatile SDXL finetune. Use score_9, score_8_up tags.", 900_000, nsfw_level=2),
        ckpt("ckpt_g7.safetensors", "flux", FLUX, "FLUX.1 [dev]", ("base model", "text to image"),
             "A 12B rectified flow transformer.", 850_000, kind="diffusion_model"),
        ckpt("ckpt_h8.safetensors", "spicy15", SD15, "Spicy Real Mix",
             ("photorealistic", "realistic", "nsfw", "woman"), "Photorealistic women.", 950_000,
             nsfw=True, nsfw_level=16),
        ckpt("ckpt_i9.safetensors", "pixelxl", SDXL, "PixelWave XL", ("pixel art", "retro", "game", "sprite"),
             "Pixel art scenes and sprites.", 30_000),
        # --- Flux's components -------------------------------------------------------------------
        _rec("ae.safetensors", "vae", title="ae", size=int(0.33 * GB), extra={"latent_channels": 16}),
        _rec("clip_l.safetensors", "text_encoder", title="clip_l", size=int(0.25 * GB)),
        _rec("t5xxl_fp8_e4m3fn.safetensors", "text_encoder", title="t5xxl_fp8_e4m3fn", size=int(4.9 * GB)),

        # --- LoRAs: elderly people ---------------------------------------------------------------
        lora("concepts/sakura_v2.safetensors", "elderly", SD15, "Silver Age Portraits",
             ("old man", "old woman", "elderly", "wrinkled skin", "grey hair", "portrait"), ("slvrage", "wrinkled skin"),
             "Realistic elderly faces with deep wrinkles, age spots and grey hair.", 35_000),
        lora("xl/cyber_x.safetensors", "elderly", SDXL, "Wise Elders XL",
             ("senior", "aged", "grandmother", "grandfather", "wrinkles"), ("eldr",),
             "Aged faces of grandparents and seniors, photographic.", 12_000),
        lora("flux/f_014.safetensors", "elderly", FLUX, "Old People (Flux)",
             ("old people", "old age", "portrait", "realistic"), ("aged face",),
             "Convincing old age on Flux: wrinkles, sagging skin, white hair.", 8_000),
        # --- hair and characters -------------------------------------------------------------------
        lora("misc/dragon_style.safetensors", "pink_hair", SD15, "pnk_h_e10",
             ("pnkhr", "1girl", "pink hair", "solo", "long hair", "looking at viewer", "bangs"), (),
             sources=("header",)),
        lora("xl/lora_0193.safetensors", "pink_hair", SDXL, "Pink Hair XL",
             ("hair color", "pink hair", "anime", "character"), ("pink hair",), "Pink hair for SDXL anime girls.",
             150_000),
        lora("chars/c_118.safetensors", "aqua", SD15, "Aqua (KonoSuba) - Character LoRA",
             ("character", "anime", "konosuba", "goddess"), ("aqua (konosuba)", "blue hair", "hair rings", "blue eyes"),
             "Aqua from KonoSuba with her blue hair and hair rings.", 60_000),
        lora("chars/c_207.safetensors", "tifa", PONY, "Tifa Lockhart (Final Fantasy VII)",
             ("character", "final fantasy", "video game", "woman"),
             ("tifa lockhart", "black hair", "red eyes", "tank top", "suspenders"), "Tifa for Pony.", 120_000),
        lora("misc/nekomimi_v1.safetensors", "catgirl", SD15, "nekomimi_v1",
             ("1girl", "cat ears", "animal ears", "cat tail", "tail", "solo", "smile"), (), sources=("header",)),
        # --- clothing ------------------------------------------------------------------------------
        lora("clothing/k1.safetensors", "kimono", SD15, "Kimono & Yukata",
             ("clothing", "kimono", "yukata", "japanese clothes", "traditional clothing"), ("kimono",),
             "Traditional Japanese kimono and yukata.", 45_000),
        lora("clothing/m2.safetensors", "maid", SDXL, "Classic Maid Outfit XL",
             ("clothing", "maid", "maid outfit", "apron", "maid headdress"), ("maid outfit",), "", 30_000),
        lora("clothing/j3.safetensors", "leather_jacket", FLUX, "Leather Jacket (Flux)",
             ("clothing", "leather jacket", "fashion", "jacket"), ("black leather jacket",), "", 9_000),
        lora("misc/lace_v2.safetensors", "lingerie", SD15, "Lace Lingerie",
             ("lingerie", "clothing", "woman", "sexy", "nsfw"), ("lace lingerie",), "", 200_000,
             nsfw=True, nsfw_level=8),
        lora("xl/beach_fun.safetensors", "bikini", SDXL, "Bikini Beach XL",
             ("bikini", "swimsuit", "beach", "woman", "summer"), ("bikini",), "", 150_000, nsfw=True, nsfw_level=4),
        # --- styles --------------------------------------------------------------------------------
        lora("pixel_v1.safetensors", "watercolor", SD15, "Aquarelle Wash",
             ("aqwash", "watercolor (medium)", "traditional media", "paper texture"), ("aqwash", "watercolor painting"),
             "Loose watercolor washes on textured paper.", 25_000),
        lora("xl/wc_x.safetensors", "watercolor", SDXL, "Watercolor Dreams XL",
             ("style", "watercolor", "painting", "artistic"), ("wtrclr style",), "", 40_000),
        lora("xl/px_x.safetensors", "pixel_art", SDXL, "Pixel Art XL",
             ("pixel art", "pixel", "8bit", "sprite", "retro game"), ("pixel art",), "", 200_000),
        lora("misc/pxl_e12.safetensors", "pixel_art", SD15, "pxl_e12",
             ("pxlart", "pixel art", "no humans", "scenery", "retro artstyle"), (), sources=("header",)),
        lora("style/s_01.safetensors", "ink", SD15, "Sumi-e Ink Wash",
             ("ink wash painting", "sumi e", "monochrome", "traditional media", "chinese painting"), ("sumie",),
             "East Asian ink wash painting.", 18_000),
        lora("flux/ink_f.safetensors", "ink", FLUX, "Ink Illustration (Flux)",
             ("ink", "ink drawing", "line art", "pen and ink", "black and white"), ("inkdrw",), "", 14_000),
        lora("xl/r3d.safetensors", "render3d", SDXL, "3D Render Style XL",
             ("3d", "3d render", "cgi", "blender", "octane render", "style"), ("3d render style",), "", 70_000),
        lora("xl/scap.safetensors", "screencap", SDXL, "Anime Screencap XL",
             ("anime screencap", "anime coloring", "screencap", "anime", "style"), ("anime screencap",), "", 50_000),
        lora("xl/scap90.safetensors", "screencap", PONY, "90s Anime Screencap (Pony)",
             ("anime screencap", "retro", "90s", "anime", "style"), ("90s anime screencap", "retro artstyle"), "",
             40_000),
        lora("flux/anime_f.safetensors", "anime_style", FLUX, "Anime Style (Flux)",
             ("anime", "style", "anime style", "illustration"), ("anime style",), "", 60_000),
        lora("xl/chibi_p.safetensors", "chibi", PONY, "Chibi Style (Pony)",
             ("chibi", "cute", "style", "super deformed"), ("chibi",), "", 30_000),
        lora("style/analog.safetensors", "analog", SD15, "Analog Film",
             ("photography", "film grain", "analog", "photorealistic", "35mm", "kodak portra"), ("analog photo",),
             "Analog film look: grain, halation, faded colors.", 90_000),
        # --- lighting -------------------------------------------------------------------------------
        lora("light/gh.safetensors", "golden_hour", SD15, "Golden Hour Glow",
             ("lighting", "sunset", "golden hour", "warm light", "backlighting"), ("goldenhour",),
             "Warm low sun, long shadows and glowing rim light.", 50_000),
        lora("flux/sun_f.safetensors", "golden_hour", FLUX, "Sunset Light (Flux)",
             ("golden hour", "sunset", "sun rays", "photography"), ("g0ldenh0ur",), "", 11_000),
        lora("xl/n_n.safetensors", "neon", SDXL, "Neon Nights XL",
             ("neon lights", "cyberpunk", "night city", "lighting", "rain"), ("neon glow",), "", 80_000),
        lora("neonoir_v3.safetensors", "neon", SD15, "Neonoir",
             ("neonoir", "cyberpunk", "neon", "city", "night", "rain", "science fiction"), ("neonoir", "neon lights"),
             "", 40_000),
        lora("light/moon.safetensors", "moonlight", SD15, "Moonlit Night",
             ("moonlight", "night", "moon", "blue tones", "lighting"), ("moonlit",), "", 22_000),
        # --- subjects -------------------------------------------------------------------------------
        lora("neon_v2.safetensors", "cat", SD15, "Fluffy Cats",
             ("cat", "kitten", "animal", "feline", "pet"), ("fluffy cat",), "Cute fluffy cats and kittens.", 33_000),
        lora("flux/cts_flux_e8.safetensors", "cat", FLUX, "cts_flux_e8",
             ("cat", "no humans", "animal focus", "whiskers", "pet"), (), sources=("header",)),
        lora("xl/dfx.safetensors", "dragon", SDXL, "Dragon Forge XL",
             ("dragon", "wyvern", "fantasy creature", "scales", "monster"), ("drgnfrg",),
             "Western dragons and wyverns.", 75_000),
        lora("style/loong.safetensors", "dragon", SD15, "Eastern Dragons",
             ("chinese dragon", "dragon", "eastern dragon", "loong"), ("loong",), "", 20_000),
        lora("xl/sc.safetensors", "car", SDXL, "Supercar XL",
             ("car", "sports car", "vehicle", "automotive", "supercar"), ("supercar",), "", 65_000),
        lora("misc/retro_c.safetensors", "classic_car", SD15, "Retro Cars",
             ("vehicle", "classic car", "vintage car", "automobile"), ("classiccar",), "", 15_000),
        lora("arch/cst.safetensors", "castle", SD15, "Castle Architecture",
             ("castle", "medieval", "fortress", "architecture", "building"), ("cstl",), "", 28_000),
        lora("flux/fairy_c.safetensors", "castle", FLUX, "Fairytale Castles (Flux)",
             ("castle", "fairy tale", "fantasy", "architecture"), ("fairytale castle",), "", 10_000),
        lora("xl/food_x.safetensors", "food_photo", SDXL, "Food Photography XL",
             ("food", "food photography", "dessert", "cuisine", "photography"), ("foodphoto",), "", 55_000),
        lora("food/rmn.safetensors", "ramen", SD15, "Delicious Ramen",
             ("ramen", "noodles", "food", "japanese food"), ("ramen bowl",), "", 9_000),
        lora("xl/sh_x.safetensors", "silver_hair", SDXL, "Silver Hair XL",
             ("silver hair", "white hair", "hair color", "hairstyle"), ("silver hair",), "", 25_000),
        lora("style/ost.safetensors", "tattoo", SD15, "Old School Tattoo",
             ("tattoo", "old school", "traditional tattoo", "flash art", "bold lines"), ("oldschool tattoo",), "",
             16_000),
        lora("style/vph.safetensors", "vintage_photo", SD15, "Vintage Photograph",
             ("vintage", "old photo", "sepia", "black and white", "photography"), ("old photo",),
             "Looks like a photo from the 1920s.", 21_000),
        lora("flux/dg.safetensors", "dog", FLUX, "Good Boy Dogs (Flux)", ("dog", "puppy", "pet", "animal"),
             ("good boy",), "Dogs and puppies of every breed.", 13_000),
        # --- detail / quality tools ---------------------------------------------------------------
        lora("tools/dt.safetensors", "detail", SD15, "Detail Tweaker",
             ("detail", "tool", "enhancer", "concept"), (), "Adds or removes detail.", 300_000,
             strength_range=(0.5, 1.0)),
        lora("xl/amd.safetensors", "detail", SDXL, "Add More Details XL",
             ("detailed", "detail", "quality", "enhancer", "tool"), ("add detail",), "", 250_000),
        lora("tools/dtl.safetensors", "detail", SD15, "Detail Tweaker Lite",
             ("highly detailed", "intricate", "sharp focus"), ("highly detailed", "intricate", "sharp focus"), "",
             5_000),
    ]


PINNED = {SD15: "ckpt_a1.safetensors", SDXL: "ckpt_d4.safetensors", PONY: "ckpt_f6.safetensors",
          FLUX: "ckpt_g7.safetensors"}
REAL = frozenset({"real15", "realxl", "flux"})
ANIME = frozenset({"anime15", "pony"})


@dataclass(frozen=True)
class Case:
    prompt: str
    ckpts: frozenset[str]  # acceptable automatic checkpoints (labels)
    want: frozenset[str] = frozenset()  # concepts to stack wherever a compatible LoRA exists
    ok: frozenset[str] = frozenset()  # concepts that may be stacked


def case(prompt: str, ckpts: frozenset[str] | set[str], want: str = "", ok: str = "") -> Case:
    return Case(prompt, frozenset(ckpts), frozenset(want.split()), frozenset(ok.split()))


CASES = [
    # elderly people, in many words
    case("photo of an old fisherman at dawn", REAL, "elderly", "golden_hour"),
    case("portrait of an elderly woman knitting by the window", REAL, "elderly"),
    case("grandpa telling stories by the fireplace, warm light", REAL, "elderly", "golden_hour"),
    case("old sailor with a pipe, (weathered face:1.3), dramatic lighting", REAL, "elderly"),
    case("photo-realistic portrait of an old lady, 85mm, bokeh", REAL, "elderly"),
    case("GRANDMA baking cookies in a cozy kitchen", REAL, "elderly", "food_photo"),
    case("an old car rusting in a field", REAL, "classic_car", "car"),
    case("an old wizard with a long white beard, fantasy art", REAL | {"paint15", "3dxl"}, "elderly"),
    case("the old king on his throne, oil painting", {"paint15"}, "elderly"),
    case("senior citizen walking in the park, candid photo", REAL, "elderly"),
    case("elderly couple holding hands on a bench", REAL, "elderly"),
    case("young girl baking bread with her grandmother", REAL, "elderly", "food_photo"),
    case("Elderly man, 80 years old, portrait photography, (wrinkles:1.2)", REAL, "elderly"),
    case("an old tree in a misty forest", REAL | {"paint15"}),
    case("elder dragon breathing fire", REAL | {"paint15", "3dxl"}, "dragon"),
    case("a wrinkled shirt on an unmade bed", REAL),
    case("senior developer working at a desk, office", REAL),
    case("aged whiskey in a crystal glass", REAL),
    case("old town street with cobblestones", REAL),
    case("old school tattoo design of a dragon", REAL | {"paint15", "anime15", "3dxl"}, "tattoo", "dragon"),
    case("old photo of a soldier in the trenches", REAL, "vintage_photo"),
    case("portrait of a woman with silver hair, elegant", REAL, "silver_hair"),
    case("anime girl with grey hair", ANIME, "", "silver_hair anime_style"),
    # hair, characters
    case("anime girl with pink hair", ANIME, "pink_hair", "anime_style"),
    case("1girl, solo, pink hair, long hair, school uniform, cherry blossoms, masterpiece, best quality",
         ANIME, "pink_hair", "anime_style"),
    case("aqua from konosuba, smiling, blue hair", ANIME, "aqua", "anime_style"),
    case("girl with blue hair and blue eyes, reading a book", REAL | ANIME, "", "anime_style"),
    case("score_9, score_8_up, score_7_up, tifa lockhart, bar interior", {"pony"}, "tifa"),
    case("woman with black hair in a tank top, red eyes", REAL),
    case("girl with cat ears and a tail, anime style", ANIME, "catgirl", "anime_style"),
    case("woman wearing a cat ears headband, photo", REAL, "catgirl"),
    case("(masterpiece, best quality:1.2), 1girl, solo, (pink hair:1.3), (maid outfit:1.1), looking at viewer, cafe",
         ANIME, "pink_hair maid", "anime_style"),
    case("girl in a kimono holding a kitten", REAL | ANIME, "kimono cat"),
    case("cute anime catgirl, nekomimi", ANIME, "catgirl", "anime_style"),
    # animals and creatures
    case("a fluffy kitty sleeping on a windowsill", REAL, "cat"),
    case("two cats playing in the garden, photo", REAL, "cat"),
    case("(masterpiece:1.2), (best quality), ((kitten)) playing with yarn, soft lighting", REAL, "cat"),
    case("medieval knight portrait, dramatic light", REAL | {"paint15"}),
    case("a red dragon perched on a castle tower, fantasy art", {"paint15", "realxl", "3dxl", "real15", "flux"},
         "dragon castle"),
    case("majestic dragons flying over snowy mountains", REAL | {"paint15", "3dxl"}, "dragon"),
    case("ドラゴン, a dragon over a château ✨, épique", REAL | {"paint15", "3dxl"}, "dragon", "castle"),
    case("a cat wearing a tiny wizard hat", REAL, "cat"),
    case("dragonfly on a leaf, macro photo", REAL),
    case("a hot dog with mustard on a paper plate", REAL, "", "food_photo"),
    case("puppy playing in the snow", REAL, "dog"),
    case("girl with dog ears, anime", ANIME, "", "anime_style"),
    case("一只猫 cat on a sofa", REAL, "cat"),
    case("gato negro durmiendo en el sofá", REAL),
    # vehicles, buildings, food
    case("vintage automobile parked on a street in the 1950s", REAL, "classic_car", "car"),
    case("red sports car on a racetrack, motion blur", REAL, "car", "classic_car"),
    case("a medieval castle on a hill at golden hour, oil painting", {"paint15"}, "castle golden_hour"),
    case("bowl of ramen with steam, food photography, close-up", REAL, "ramen food_photo"),
    case("sushi platter, food photography", REAL, "food_photo"),
    case("castle in the sky, studio ghibli style", ANIME | {"paint15"}, "castle", "anime_style"),
    case("a boy riding a bicycle through a village", REAL),
    case("a chocolate cake dessert on a plate", REAL, "food_photo"),
    # styles
    case("pixel art knight fighting a slime, 16-bit", {"pixelxl"}, "pixel_art"),
    case("pixel-art castle, retro game", {"pixelxl"}, "pixel_art", "castle"),
    case("8-bit video game sprite of a hero", {"pixelxl"}, "pixel_art"),
    case("watercolor painting of a cat", {"paint15"}, "watercolor cat"),
    case("3D render of a sports car, studio lighting", {"3dxl"}, "render3d car", "classic_car"),
    case("watercolour painting of a fox in the forest", {"paint15"}, "watercolor"),
    case("sumi-e ink wash painting of bamboo and mountains", {"paint15"}, "ink"),
    case("3d render of a cute robot, octane render, blender", {"3dxl"}, "render3d"),
    case("anime screencap of a boy on a bicycle, 90s anime", ANIME, "screencap", "anime_style"),
    case("chibi girl eating ice cream, score_9", {"pony"}, "chibi", "food_photo screencap"),
    case("kimono girl under cherry blossoms", REAL | ANIME, "kimono"),
    case("maid cafe, girl in a maid outfit serving tea, anime", ANIME, "maid", "anime_style"),
    case("man in a black leather jacket, flux, cinematic photo", {"flux"}, "leather_jacket"),
    case("analog photo of a woman on a street, film grain, 35mm", REAL, "analog"),
    # lighting
    case("neon-lit street in tokyo at night, rain, cyberpunk", REAL, "neon"),
    case("a lonely wolf howling under the moonlight", REAL, "moonlight"),
    case("a woman in a red dress walking on the beach at sunset", REAL, "golden_hour"),
    case("a cat sleeping at night", REAL, "cat", "moonlight"),
    case("futuristic city skyline at night, neon signs", REAL, "neon"),
    case("a glowing neon green slime monster", REAL | {"3dxl"}),
    case("sunset over the ocean, seascape", REAL | {"paint15"}, "golden_hour"),
    case("cyberpunk samurai in the rain", REAL, "", "neon"),
    case("moon over a quiet lake", REAL | {"paint15"}, "", "moonlight"),
    # a third batch, written before it was ever run
    case("beautiful landscape with a castle and a dragon, epic fantasy", REAL | {"paint15", "3dxl"}, "castle dragon"),
    case("a black cat on a witch's broom, halloween", REAL | ANIME, "cat"),
    case("old witch stirring a cauldron", REAL | {"paint15"}, "elderly"),
    case("close up photo of an old woman's hands", REAL, "elderly"),
    case("portrait of my grandad, oil painting", {"paint15"}, "elderly"),
    case("old elf sage reading a scroll", REAL | {"paint15"}, "elderly"),
    case("elf archer in the forest", REAL | {"paint15"}),
    case("portrait of a man with grey hair and a beard, photo", REAL, "", "elderly silver_hair"),
    case("a samurai standing in the rain, ink wash", {"paint15"}, "ink"),
    case("retro 80s sports car, synthwave, neon lights", REAL | {"3dxl"}, "car neon", "classic_car"),
    case("a red car in the rain", REAL, "car", "classic_car"),
    case("lamborghini supercar at night", REAL, "car"),
    case("kittens in a basket", REAL, "cat"),
    case("lion in the savanna at golden hour", REAL, "golden_hour"),
    case("tiger portrait, wildlife photography", REAL),
    case("a wyvern attacking a village", REAL | {"paint15", "3dxl"}, "dragon"),
    case("chinese dragon dance festival", REAL, "dragon"),
    case("dragon girl with horns and a tail", REAL | ANIME, "", "anime_style"),
    case("pixelated retro platformer level", {"pixelxl"}, "pixel_art", "screencap"),
    case("ukiyo-e woodblock print of mount fuji", {"paint15"}, "", "ink"),
    case("cozy cabin in snowy woods, moonlit night", REAL | {"paint15"}, "moonlight"),
    case("girl in a yukata at a summer festival, fireworks", REAL | ANIME, "kimono"),
    case("a french maid cleaning the house", REAL | ANIME, "maid"),
    case("man wearing a denim jacket, flux", {"flux"}),
    case("a plate of spaghetti", REAL, "", "food_photo"),
    case("catgirl maid serving coffee", REAL | ANIME, "catgirl maid", "anime_style"),
    case("dog walking in the park with its owner", REAL, "dog"),
    # a fourth batch, also written before it was ever run
    case("an elderly fisherman mending nets on the pier, golden hour", REAL, "elderly golden_hour"),
    case("grumpy old cat sleeping on a rug", REAL, "cat"),
    case("portrait of a wise old monk, ink wash painting", {"paint15"}, "elderly ink"),
    case("kawaii kitten, chibi style, score_9", {"pony"}, "chibi cat"),
    case("a steaming bowl of noodles", REAL, "", "ramen food_photo"),
    case("vintage car show, black and white photo", REAL, "classic_car", "vintage_photo car"),
    case("neon sign reading OPEN in a rainy window", REAL, "neon"),
    case("a knight fighting a dragon in front of a burning castle, oil painting", {"paint15"}, "dragon castle"),
    case("cute girl with pink twintails", REAL | ANIME, "", "pink_hair anime_style"),
    case("a woman with long silver hair in a kimono", REAL | ANIME, "silver_hair kimono"),
    case("photo of a grandmother and her granddaughter laughing", REAL, "elderly"),
    case("moonlit castle on a cliff", REAL | {"paint15"}, "moonlight castle"),
    case("low poly 3d render of a fox", {"3dxl"}, "render3d"),
    case("8-bit pixel art cat", {"pixelxl"}, "pixel_art cat"),
    case("sushi chef preparing food in a restaurant, photo", REAL, "", "food_photo"),
    case("cat café interior with people relaxing", REAL, "", "cat"),
    case("retro anime screencap, 1990s, girl on a train", ANIME, "screencap", "anime_style"),
    case("watercolor illustration of an old lighthouse", {"paint15"}, "watercolor"),
    case("old man and the sea, oil painting", {"paint15"}, "elderly"),
    case("tifa lockhart cosplay photo", REAL | {"pony"}, "tifa"),
    # quality words, unrelated prompts, NSFW
    case("highly detailed portrait of a knight in ornate armor, intricate, sharp focus", REAL, "", "detail"),
    case("a red bicycle leaning against a brick wall", REAL),
    case("mountain lake landscape, morning mist", REAL | {"paint15"}),
    case("woman in lace lingerie, bedroom", REAL),
    case("nsfw, woman in lace lingerie, bedroom", REAL | {"spicy15"}, "lingerie", "bikini"),
]


# --- evaluation ---------------------------------------------------------------------------------

@dataclass
class Result:
    case: Case
    run: str  # "auto" or the pinned family
    checkpoint: str
    stacked: list[str]  # concept labels, in order
    available: frozenset[str]  # wanted concepts a compatible, allowed LoRA exists for

    @property
    def wrong(self) -> list[str]:
        return [c for c in self.stacked if c not in self.case.want | self.case.ok]

    @property
    def missed(self) -> set[str]:
        return set(self.available) - set(self.stacked)


def _available(case_: Case, library: list[ModelRecord], plan: dict[str, Any], concept_of: dict[str, str],
               ) -> frozenset[str]:
    ck = plan["checkpoint"]
    nsfw = analyze_keywords(case_.prompt).nsfw
    out = set()
    for r in library:
        if r.kind != "lora" or concept_of[r.name] not in case_.want:
            continue
        if r.nsfw_level > 2 and not nsfw:
            continue
        if lora_compatibility(r, ck["architecture"], ck["base_model"]) is not None:
            out.add(concept_of[r.name])
    return frozenset(out)


def evaluate(library: list[ModelRecord] | None = None, concept_of: dict[str, str] | None = None,
             label_of: dict[str, str] | None = None, pinned: bool = True) -> list[Result]:
    """Plan every case automatically and (with `pinned`) on each family's checkpoint."""
    library = library if library is not None else build_library()
    concept_of = concept_of or CONCEPT
    label_of = label_of or CKPT_LABEL
    results = []
    for c in CASES:
        runs: list[tuple[str, dict[str, Any]]] = [("auto", {})]
        if pinned:
            runs += [(fam, {"checkpoint": name}) for fam, name in PINNED.items()]
        for run, overrides in runs:
            plan = planner.build_plan({"prompt": c.prompt, "overrides": overrides}, library)
            stacked = [concept_of[lo["name"]] for lo in plan["loras"]]
            name = plan["checkpoint"]["name"]
            results.append(Result(c, run, label_of.get(name, name), stacked,
                                  _available(c, library, plan, concept_of)))
    return results


def figures(results: list[Result]) -> dict[str, float]:
    stacked = sum(len(r.stacked) for r in results)
    right = stacked - sum(len(r.wrong) for r in results)
    wanted = sum(len(r.available) for r in results)
    found = wanted - sum(len(r.missed) for r in results)
    auto = [r for r in results if r.run == "auto"]
    ck_ok = sum(r.checkpoint in r.case.ckpts for r in auto)
    return {"precision": right / stacked if stacked else 1.0, "recall": found / wanted if wanted else 1.0,
            "stacked": stacked, "wrong": stacked - right, "wanted": wanted, "missed": wanted - found,
            "checkpoint_accuracy": ck_ok / len(auto)}


@lru_cache(maxsize=1)
def _results() -> tuple[Result, ...]:
    return tuple(evaluate())


def _fmt(r: Result) -> str:
    return f"[{r.run} -> {r.checkpoint}] {r.case.prompt!r}: stacked {r.stacked}"


# --- tests ----------------------------------------------------------------------------------------

def test_library_and_cases_are_broad():
    lib = build_library()
    assert sum(r.kind == "lora" for r in lib) >= 25
    assert sum(r.kind in ("checkpoint", "diffusion_model") for r in lib) >= 8
    assert len(CASES) >= 30
    assert {c for case_ in CASES for c in case_.want} <= set(CONCEPT.values())


def test_no_wrong_lora_is_stacked():
    wrong = [f"{_fmt(r)} wrong {r.wrong}" for r in _results() if r.wrong]
    assert not wrong, "\n".join(wrong)


def test_recall_of_wanted_loras():
    results = list(_results())
    f = figures(results)
    missed = "\n".join(f"{_fmt(r)} missed {sorted(r.missed)}" for r in results if r.missed)
    assert f["recall"] >= 0.9, f"recall {f['recall']:.2f}\n{missed}"


@pytest.mark.parametrize("prompt,family,concept", [
    ("photo of an old fisherman at dawn", SD15, "elderly"),
    ("photo of an old fisherman at dawn", SDXL, "elderly"),
    ("old sailor with a pipe, (weathered face:1.3), dramatic lighting", SD15, "elderly"),
    ("portrait of an elderly woman knitting by the window", SDXL, "elderly"),
    ("a fluffy kitty sleeping on a windowsill", SD15, "cat"),
    ("vintage automobile parked on a street in the 1950s", SDXL, "car"),
    ("neon-lit street in tokyo at night, rain, cyberpunk", SDXL, "neon"),
    ("pixel art knight fighting a slime, 16-bit", SD15, "pixel_art"),
    ("watercolour painting of a fox in the forest", SD15, "watercolor"),
])
def test_key_recalls(prompt, family, concept):
    r = next(r for r in _results() if r.case.prompt == prompt and r.run == family)
    assert concept in r.stacked, _fmt(r)


@pytest.mark.parametrize("concepts,expected", [
    (["old fisherman"], "old man"), (["old sailor"], "old man"), (["elderly woman"], "old woman"),
    (["grandma"], "old woman"), (["grandpas"], "old man"), (["senior citizen"], "elderly"),
    (["village elder"], "elderly"), (["old car"], None), (["old town"], None), (["elder dragon", "elder"], None),
    (["wrinkled shirt", "wrinkled"], None), (["senior developer", "senior"], None),
])
def test_elderly_relations(concepts, expected):
    terms = {t for t, _ in elderly_terms(concepts)}
    if expected is None:
        assert not terms
    else:
        assert expected in terms
    if "grandma" in concepts or "elderly woman" in concepts:
        assert "old man" not in terms  # the other gender's tags are left out


def test_automatic_checkpoints():
    bad = [f"{r.case.prompt!r}: {r.checkpoint} not in {sorted(r.case.ckpts)}"
           for r in _results() if r.run == "auto" and r.checkpoint not in r.case.ckpts]
    assert len(bad) <= 2, "\n".join(bad)


def test_picks_do_not_depend_on_file_names():
    lib = build_library()
    rng = random.Random(7)
    mapping = {r.name: "".join(rng.choices(string.ascii_lowercase, k=10)) + ".safetensors" for r in lib
               if r.kind in ("lora", "checkpoint", "diffusion_model")}
    renamed = [dataclasses.replace(r, name=mapping.get(r.name, r.name)) for r in lib]
    concept_of = {mapping[n]: c for n, c in CONCEPT.items()}
    label_of = {mapping[n]: lb for n, lb in CKPT_LABEL.items()}
    again = {r.case.prompt: (r.stacked, r.checkpoint) for r in evaluate(renamed, concept_of, label_of, pinned=False)}
    before = {r.case.prompt: (r.stacked, r.checkpoint) for r in _results() if r.run == "auto"}
    assert again == before


if __name__ == "__main__":  # the figures and every miss, for tuning
    res = evaluate()
    for r in res:
        if r.wrong or r.missed:
            print(f"{_fmt(r)} wrong {r.wrong} missed {sorted(r.missed)}")
    for r in res:
        if r.run == "auto" and r.checkpoint not in r.case.ckpts:
            print(f"checkpoint {r.case.prompt!r}: {r.checkpoint} not in {sorted(r.case.ckpts)}")
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in figures(res).items()})

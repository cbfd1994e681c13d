"""The words the selector knows: styles, subjects, boilerplate, synonyms.

Kept in one place because the same vocabulary reads both sides: a prompt ("oil painting of a
harbour") and a model's metadata (tags "painting", "artistic"). Every entry is a plain word or
phrase; `text.make_term` turns them into matchable terms. Nothing here names a particular model.
"""
from __future__ import annotations

STYLES = ("realistic", "anime", "artistic", "3d", "cartoon", "pixel art")

# style -> {word or phrase: weight}. Weights say how strongly the term alone implies the style.
STYLE_VOCAB: dict[str, dict[str, float]] = {
    "realistic": {
        "photo": 3, "photo of": 5, "a photo": 4, "photograph": 4, "photography": 4, "photographic": 4,
        "photorealistic": 5, "photorealism": 5, "photoreal": 5, "realistic": 4, "realism": 3,
        "hyperrealistic": 4, "hyper realistic": 4, "hyperrealism": 4, "ultra realistic": 4, "lifelike": 3,
        "raw photo": 5, "dslr": 4, "35mm": 3, "50mm": 3, "85mm": 3, "film grain": 2, "bokeh": 3,
        "depth of field": 1.5, "canon eos": 3, "nikon": 3, "sony a7": 3, "fujifilm": 3, "kodak": 2.5,
        "portra": 3, "polaroid": 2.5, "analog film": 3, "shot on": 2, "photoshoot": 4, "photo shoot": 4,
        "portrait photo": 5, "portrait photography": 5, "street photography": 5, "documentary": 2,
        "editorial": 1.5, "candid": 2, "skin texture": 2, "skin pores": 2.5, "real life": 3, "raw": 1,
        "cinematic": 1, "studio lighting": 1, "natural lighting": 1, "national geographic": 3, "selfie": 2,
        "photograph of": 5, "realistic vision": 3, "semi realistic": 2, "real person": 3,
    },
    "anime": {
        "anime": 4, "anime style": 5, "manga": 3.5, "waifu": 3, "chibi": 3, "1girl": 3, "1boy": 3,
        "2girls": 3, "multiple girls": 2, "cel shading": 2.5, "cel shaded": 2.5, "kawaii": 2, "visual novel": 2.5,
        "light novel": 2, "vtuber": 2.5, "studio ghibli": 3, "ghibli": 3, "makoto shinkai": 3, "shoujo": 2.5,
        "shonen": 2.5, "shounen": 2.5, "isekai": 2, "danbooru": 3, "otaku": 2, "hentai": 3, "neko": 1.5,
        "looking at viewer": 1, "genshin impact": 2, "hololive": 2, "touhou": 2.5, "anime screencap": 4,
        "anime coloring": 4, "bishoujo": 3, "bishounen": 3, "moe": 1.5, "2d": 1.5, "semi realistic": 1.5,
        "2.5d": 2, "japanese animation": 3, "key visual": 1.5, "illustrious": 1.5, "pony": 0.5,
    },
    "artistic": {
        "painting": 3, "oil painting": 5, "oil": 1.5, "watercolor": 4.5, "watercolor painting": 5,
        "impressionist": 4, "impressionism": 4, "acrylic": 2.5, "acrylic painting": 4.5, "gouache": 4,
        "canvas": 2, "brush strokes": 3.5, "brushstrokes": 3.5, "concept art": 3, "illustration": 2,
        "sketch": 2.5, "drawing": 2, "pencil drawing": 3.5, "pencil sketch": 3.5, "charcoal": 3,
        "ink": 1.5, "ink wash": 3.5, "ink drawing": 3.5, "art nouveau": 3.5, "art deco": 2.5, "baroque": 2.5,
        "renaissance": 2.5, "digital painting": 4, "digital art": 2.5, "fine art": 3, "surrealism": 3,
        "surreal": 2, "expressionism": 3.5, "expressionist": 3.5, "pointillism": 4, "pastel": 1.5,
        "fantasy art": 2.5, "matte painting": 4, "van gogh": 4, "monet": 4, "rembrandt": 4, "klimt": 4,
        "ukiyo e": 4, "artstation": 1.5, "stained glass": 2.5, "mural": 2.5, "fresco": 3.5, "woodcut": 3.5,
        "linocut": 3.5, "etching": 3, "engraving": 2.5, "lithograph": 3, "traditional media": 3,
        "painterly": 4, "artistic": 3, "art style": 2, "artwork": 1.5, "masterpiece painting": 4,
        "in the style of": 1.5, "by greg rutkowski": 3, "alphonse mucha": 4, "lineart": 2, "line art": 2,
        "storybook illustration": 3, "paint": 2, "painted": 2.5, "romanticism": 3.5, "abstract art": 3,
    },
    "3d": {
        "3d": 3, "3d render": 5, "3d rendering": 5, "render": 2, "rendering": 2, "rendered": 2,
        "octane": 3, "octane render": 5, "blender": 3, "cgi": 3.5, "unreal engine": 4.5, "unreal engine 5": 5,
        "ray tracing": 2.5, "raytracing": 2.5, "c4d": 3.5, "cinema4d": 3.5, "cinema 4d": 3.5, "3d model": 4,
        "low poly": 3.5, "lowpoly": 3.5, "isometric": 1.5, "vray": 3.5, "redshift render": 4, "zbrush": 4,
        "subsurface scattering": 1.5, "claymation": 3, "clay render": 4, "figurine": 2, "3d art": 4,
        "3d character": 4, "pixar style": 3, "volumetric render": 2, "game asset": 2, "voxel": 2.5,
        "keyshot": 4, "toy": 1, "funko pop": 3, "3dcg": 4,
    },
    "cartoon": {
        "cartoon": 4, "cartoonish": 4, "cartoon style": 5, "comic": 2.5, "comic book": 3.5, "comics": 2.5,
        "disney": 3, "pixar": 2.5, "looney tunes": 4, "simpsons": 4, "flat colors": 1.5, "vector art": 2.5,
        "vector": 1, "flat design": 2.5, "caricature": 3.5, "toon": 3.5, "animated": 1.5, "childrens book": 2.5,
        "storybook": 2, "sticker": 2, "clip art": 2.5, "clipart": 2.5, "doodle": 2.5, "mascot": 1.5,
        "western animation": 4, "cartoon network": 4, "disney style": 4, "cute cartoon": 5, "comic style": 4,
        "graphic novel": 2.5, "bold outlines": 2, "thick outlines": 2, "2d animation": 3, "furry": 1.5,
    },
    "pixel art": {
        "pixel art": 5, "pixel": 3, "pixels": 3, "pixelated": 3.5, "pixelart": 5, "8 bit": 3.5, "8bit": 3.5,
        "16 bit": 3.5, "16bit": 3.5, "sprite": 2.5, "spritesheet": 3, "sprite sheet": 3, "retro game": 2.5,
        "retro video game": 3, "pixel style": 5, "dithering": 2, "gameboy": 2.5,
    },
}

# Styles that are close enough that a model for one is a fair pick for the other.
RELATED_STYLES: dict[str, dict[str, float]] = {
    "realistic": {"3d": 0.2},
    "anime": {"cartoon": 0.3, "artistic": 0.1},
    "artistic": {"anime": 0.1},
    "3d": {"cartoon": 0.3, "realistic": 0.3},
    "cartoon": {"anime": 0.5, "3d": 0.3, "artistic": 0.1},
    "pixel art": {"cartoon": 0.2, "anime": 0.2},
}

# Style words so common that alone they say little about which LoRA to stack.
GENERIC_STYLE_WORDS = frozenset({
    "anime", "manga", "realistic", "photorealistic", "photo", "photograph", "photography", "painting",
    "art", "artistic", "illustration", "drawing", "3d", "render", "rendering", "cartoon", "style", "realism",
    "digital art", "artwork", "concept art", "photoreal", "raw", "cinematic", "2d",
    "anime style", "cartoon style", "art style", "realistic style", "photo style",
})

CONTENT_TYPES = ("character", "portrait", "landscape", "scene", "object", "animal", "architecture", "abstract")

CONTENT_VOCAB: dict[str, dict[str, float]] = {
    "portrait": {
        "portrait": 4, "headshot": 4, "close up": 2.5, "closeup": 2.5, "face": 2, "selfie": 3, "upper body": 2,
        "bust": 2, "head and shoulders": 4, "portrait photo": 4, "profile picture": 3, "mugshot": 3,
    },
    "character": {
        "girl": 3, "boy": 3, "woman": 3, "man": 3, "person": 3, "people": 2.5, "lady": 3, "guy": 3,
        "character": 3, "1girl": 3, "1boy": 3, "2girls": 3, "warrior": 3, "knight": 3, "wizard": 3,
        "witch": 3, "princess": 3, "prince": 3, "king": 3, "queen": 3, "soldier": 3, "elf": 3, "samurai": 3,
        "ninja": 3, "fisherman": 3, "child": 3, "kid": 3, "old man": 3.5, "old woman": 3.5, "hero": 3,
        "mage": 3, "sorceress": 3, "pirate": 3, "cowboy": 3, "astronaut": 3, "robot": 2, "cyborg": 3,
        "vampire": 3, "maid": 3, "student": 3, "schoolgirl": 3, "businessman": 3, "farmer": 3, "chef": 3,
        "monk": 3, "priest": 3, "nun": 3, "dancer": 3, "singer": 3, "musician": 3, "doctor": 3, "nurse": 3,
        "teacher": 3, "detective": 3, "villain": 3, "superhero": 3, "goddess": 3, "angel": 2.5, "demon": 2.5,
        "mermaid": 3, "fairy": 3, "full body": 2, "standing": 1, "sitting": 1, "wearing": 1.5, "dress": 1,
        "female": 2.5, "male": 2.5, "hunter": 3, "sailor": 3, "gentleman": 3, "grandmother": 3,
        "grandfather": 3, "baby": 3, "toddler": 3, "teenager": 3, "adventurer": 3,
    },
    "animal": {
        "cat": 3, "dog": 3, "fox": 3, "wolf": 3, "horse": 3, "bird": 3, "lion": 3, "tiger": 3, "owl": 3,
        "animal": 3, "puppy": 3, "kitten": 3, "bear": 3, "rabbit": 3, "bunny": 3, "deer": 3, "fish": 2.5,
        "butterfly": 3, "eagle": 3, "elephant": 3, "giraffe": 3, "panda": 3, "penguin": 3, "dolphin": 3,
        "whale": 3, "shark": 3, "snake": 3, "frog": 3, "turtle": 3, "monkey": 3, "koala": 3, "hamster": 3,
        "squirrel": 3, "raccoon": 3, "parrot": 3, "dragon": 2, "unicorn": 2.5, "creature": 2, "pet": 2.5,
        "wildlife": 3, "insect": 3, "cow": 3, "pig": 3, "sheep": 3, "chicken": 3, "duck": 3, "hedgehog": 3,
    },
    "landscape": {
        "landscape": 4, "mountain": 3, "valley": 3, "forest": 2.5, "ocean": 2.5, "sea": 2, "beach": 2.5,
        "lake": 2.5, "river": 2.5, "desert": 3, "sky": 1.5, "sunset": 2, "sunrise": 2, "field": 2,
        "meadow": 3, "waterfall": 3, "canyon": 3, "island": 2.5, "nature": 2.5, "scenery": 3.5, "vista": 3.5,
        "hills": 3, "countryside": 3, "coast": 2.5, "coastline": 3, "glacier": 3, "volcano": 3, "jungle": 2.5,
        "tundra": 3, "prairie": 3, "aurora": 2, "starry sky": 2, "galaxy": 2, "clouds": 1.5, "horizon": 2,
        "panorama": 3, "wilderness": 3, "cliff": 2.5, "fjord": 3, "outer space": 2, "planet": 2,
    },
    "architecture": {
        "building": 3, "castle": 3, "cathedral": 3.5, "church": 3, "temple": 3, "house": 2.5, "skyscraper": 3,
        "tower": 2.5, "architecture": 4, "interior": 3, "interior design": 4, "room": 2, "bridge": 2.5,
        "palace": 3, "mansion": 3, "cottage": 3, "facade": 3.5, "living room": 3, "bedroom": 3, "kitchen": 2.5,
        "library": 2.5, "ruins": 2.5, "lighthouse": 3, "pagoda": 3, "mosque": 3, "villa": 3, "cabin": 2.5,
        "fortress": 3, "architectural": 4, "hallway": 3, "staircase": 3,
    },
    "scene": {
        "city": 3, "cityscape": 3.5, "street": 3, "market": 3, "harbor": 3, "harbour": 3, "port": 2,
        "village": 3, "town": 3, "battle": 3, "cafe": 3, "restaurant": 3, "party": 3, "crowd": 3, "alley": 3,
        "downtown": 3, "festival": 3, "train station": 3, "subway": 3, "battlefield": 3, "marketplace": 3,
        "night city": 3.5, "dock": 2.5, "pier": 2.5, "boats": 2, "traffic": 3, "concert": 3, "classroom": 3,
        "office": 2.5, "shop": 2.5, "plaza": 3, "bar": 2, "tavern": 3, "carnival": 3, "spaceship interior": 3,
    },
    "object": {
        "bicycle": 3, "car": 3, "cup": 3, "bottle": 3, "chair": 3, "sword": 2.5, "watch": 2.5, "shoe": 3,
        "product": 3.5, "still life": 4, "vase": 3, "food": 3, "fruit": 3, "apple": 3, "cake": 3, "book": 2,
        "lamp": 3, "guitar": 3, "camera": 2, "phone": 3, "motorcycle": 3, "truck": 3, "airplane": 3,
        "ship": 2.5, "boat": 2.5, "teapot": 3, "jewelry": 3, "ring": 2.5, "necklace": 3, "helmet": 2.5,
        "perfume": 3, "sneaker": 3, "bag": 2.5, "handbag": 3, "potion": 3, "coffee": 2.5, "burger": 3,
        "pizza": 3, "sushi": 3, "flower": 2, "flowers": 2, "bouquet": 3, "toy": 2.5, "logo": 3, "icon": 3,
        "furniture": 3, "robot": 1, "weapon": 2.5, "gun": 2.5, "spaceship": 2.5, "train": 2.5, "clock": 3,
    },
    "abstract": {
        "abstract": 4, "pattern": 3, "fractal": 4, "geometric": 3, "shapes": 2.5, "texture": 2,
        "kaleidoscope": 4, "psychedelic": 3, "swirls": 3, "gradient": 2.5, "seamless pattern": 4,
        "wallpaper": 1, "mandala": 3.5, "generative art": 4, "liquid": 1.5, "glitch": 2.5,
    },
}

STOP_WORDS = frozenset("""
a an the of with in on at by for from to and or nor but is are was were be been being am has have had
having her his their its our your my him them they she he it we you i me us this that these those there
here very some any into onto over under near while as so than then just also only about above below
between behind beside besides across through during before after against around among upon within
without toward towards out up down off again further once all each every both few more most other such
no not own same too can will would should could may might must shall do does did doing done what which
who whom whose when where why how if else per via amid along beneath
wearing holding standing sitting looking wears holds stands sits looks featuring showing shows
depicting depicts using made make makes like style styled styles s t
""".split())

# Prompt boilerplate that says "make it good", not what to draw; never a key concept.
BOILERPLATE = frozenset({
    "masterpiece", "best quality", "high quality", "highest quality", "top quality", "amazing quality",
    "good quality", "normal quality", "low quality", "worst quality", "bad quality", "ultra detailed",
    "highly detailed", "extremely detailed", "very detailed", "detailed", "intricate", "intricate details",
    "intricate detail", "hyperdetailed", "hyper detailed", "4k", "8k", "16k", "uhd", "hd", "hdr", "absurdres",
    "highres", "high res", "high resolution", "lowres", "sharp focus", "award winning", "award-winning",
    "trending on artstation", "professional", "ultra hd", "very aesthetic", "aesthetic", "newest",
    "score 9", "score 8 up", "score 7 up", "score 6 up", "score 5 up", "score 4 up", "score 8", "score 7",
    "score 6", "score 5", "score 4", "source anime", "source pony", "source furry", "source cartoon",
    "rating safe", "rating questionable", "rating explicit", "sfw", "solo", "looking at viewer", "beautiful", "stunning",
    "gorgeous", "epic", "amazing", "awesome", "perfect", "best", "ultra", "quality", "high detail",
    "8k uhd", "4k uhd", "uhd 8k", "dslr quality", "octane render quality",
    "image", "picture", "high", "great", "good", "nice", "lovely", "incredible", "insanely detailed",
    "fine details", "extremely detailed cg", "unity 8k wallpaper", "official art", "very awa",
})

# Quality words that still hint at a kind of LoRA (detail enhancers), as weak recommended tags.
QUALITY_HINTS: dict[str, tuple[str, ...]] = {
    "detailed": ("detail",), "highly detailed": ("detail",), "ultra detailed": ("detail",),
    "extremely detailed": ("detail",), "intricate": ("detail",), "intricate details": ("detail",),
    "hyperdetailed": ("detail",), "hyper detailed": ("detail",), "sharp focus": ("detail", "sharp"),
}

# People nouns and vague adjectives: true of half the LoRAs on CivitAI, so they count little.
GENERIC_WORDS = frozenset({
    "girl", "boy", "woman", "man", "men", "women", "person", "people", "human", "character", "female",
    "male", "lady", "guy", "kid", "1girl", "1boy", "2girls", "solo", "portrait", "face", "body", "figure",
    "subject", "full body", "upper body", "cute", "pretty", "young", "old", "little", "small", "big",
    "large", "huge", "tiny", "light", "dark", "background", "simple background", "scene", "view", "shot",
    "close up", "closeup", "looking at viewer", "smile", "smiling", "long hair", "short hair", "hair", "eyes",
    "outdoors", "indoors", "day", "lighting", "detail", "lora", "model", "concept", "tool", "sd", "sdxl", "xl",
    "v1", "v2", "v3", "version", "flux", "flux1", "illustrious", "noobai", "sd15", "sd1", "sd3", "dev", "schnell",
})

# Colours and similar modifiers: alone they say little ("red" matches a "red dress" LoRA).
MODIFIER_WORDS = frozenset({
    "red", "blue", "green", "yellow", "pink", "purple", "orange", "black", "white", "silver", "golden",
    "gold", "brown", "grey", "gray", "blonde", "blond", "aqua", "cyan", "teal", "magenta", "violet",
    "multicolored", "rainbow", "dark", "light", "bright", "pale", "colorful", "colourful", "neon", "pastel",
    "old", "young", "new", "long", "short", "tall", "wet", "shiny", "glowing", "soft", "warm", "cold",
    "retro", "vintage", "modern", "classic", "antique", "ancient", "futuristic", "senior", "aged", "aging",
    "ageing", "middle aged",
    # times of day: a setting nearly every scene has, rarely what a LoRA is about
    "night", "day", "daytime", "nighttime", "evening", "morning", "afternoon", "noon", "midnight", "tonight",
})

# Nouns that make a "<colour> <noun>" pair one concept ("pink hair" is one idea, not "pink" + "hair").
_COLOR_NOUNS = ("hair", "eyes", "dress", "skin", "shirt", "jacket", "kimono", "armor", "lips", "nails", "wings",
                "tail", "ears", "sky", "hoodie", "coat", "scarf", "hat", "gloves", "boots", "bikini", "uniform",
                "sweater", "skirt", "suit", "cape", "ribbon", "bow", "lipstick", "eyeshadow", "theme", "background",
                "flowers", "roses", "car", "fur", "feathers", "horns", "light", "lights")
_COLORS = ("red", "blue", "green", "yellow", "pink", "purple", "orange", "black", "white", "silver", "golden",
           "gold", "brown", "grey", "gray", "blonde", "blond", "aqua", "cyan", "teal", "magenta", "violet",
           "multicolored", "rainbow", "neon", "pastel", "dark", "light", "two tone", "gradient")
_AGE_PAIRS = tuple(f"{a} {n}" for a in ("old", "young", "little", "elderly", "middle aged", "teenage")
                   for n in ("man", "woman", "men", "women", "girl", "boy", "lady", "couple", "person", "people"))
_HAIR_STYLES = ("long hair", "short hair", "twintails", "twin tails", "ponytail", "twin braids", "bob cut",
                "messy hair", "curly hair", "wavy hair", "straight hair", "hair bun", "side ponytail", "drill hair",
                "hime cut", "pixie cut", "braided hair", "very long hair", "medium hair")

# Compounds that name something else than their last word ("hot dog" is no dog): kept whole,
# their words never looked for alone.
OPAQUE_COMPOUNDS = ("hot dog", "corn dog", "dragon fruit", "dog tag", "dragon ball", "cat walk", "sea horse",
                    "sea lion", "dragon boat", "pony tail", "teddy bear", "gummy bear", "dog house", "bird house")
_EAR_ANIMALS = ("cat", "dog", "fox", "wolf", "bunny", "rabbit", "horse", "bear", "mouse", "tiger", "cow", "sheep",
                "goat", "deer", "raccoon", "lion", "dragon", "demon", "elf")
_ANIMAL_PARTS = ("ears", "ear", "tail", "tails", "paws", "horns", "wings", "costume", "hood", "hoodie", "onesie",
                 "mask", "girl", "boy", "print", "plushie", "tattoo")

# Multi-word concepts kept whole: the style phrases, subject phrases and "<colour> <noun>" pairs.
KNOWN_PHRASES: frozenset[str] = frozenset(
    [p for vocab in STYLE_VOCAB.values() for p in vocab if " " in p]
    + [p for vocab in CONTENT_VOCAB.values() for p in vocab if " " in p]
    + [f"{c} {n}" for c in _COLORS for n in _COLOR_NOUNS]
    + list(_AGE_PAIRS) + list(_HAIR_STYLES)
    + ["sci fi", "science fiction", "neon lights", "golden hour", "blue hour", "night sky", "light rays",
       "god rays", "depth of field", "film noir", "dark fantasy", "high fantasy", "steam punk", "post apocalyptic",
       "add detail", "more details", "detail tweaker", "detail enhancer", "hand fix", "bad hands",
       "cat ears", "fox ears", "animal ears", "bunny ears", "pointy ears", "school uniform", "maid outfit",
       "power armor", "mecha suit", "space station", "outer space", "under water", "underwater",
       "cherry blossoms", "cherry blossom", "autumn leaves", "flower field", "rainy night", "snowy mountain",
       "city lights", "fantasy castle", "medieval castle", "art style", "traditional media", "neon lit", "neon glow",
       "cat girl", "dog girl", "fox girl", "ink wash", "sumi e", "ice cream", "sports car", "race car",
       "leather jacket", "maid outfit", "anime screencap", "old age", "wrinkled skin", "grey hair", "gray hair",
       "food photography", "product photography", "wildlife photography", "macro photography", "fashion photography",
       "architectural photography", "landscape photography", "wedding photography", "old photo", "old photograph",
       "vintage photo", "old film", "old school", "old fashioned", "old west", "old town",
       *OPAQUE_COMPOUNDS, *(f"{a} {p}" for a in _EAR_ANIMALS for p in _ANIMAL_PARTS),
       "pin up", "film photography", "black and white", "double exposure", "tilt shift", "long exposure"]
)

# Concept -> related tags worth looking for in LoRA metadata (weak evidence on their own).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "girl": ("woman", "female"), "woman": ("female", "girl"), "boy": ("man", "male"), "man": ("male",),
    "lady": ("woman", "female"), "1girl": ("woman", "female", "girl"), "1boy": ("man", "male"),
    "neon": ("cyberpunk", "neon lights"), "neon lights": ("neon", "cyberpunk"), "cyberpunk": ("sci fi", "futuristic", "neon"),
    "sci fi": ("science fiction", "futuristic"), "futuristic": ("sci fi",), "robot": ("mecha", "sci fi"),
    "mecha": ("robot", "sci fi"), "space": ("sci fi", "galaxy"), "spaceship": ("sci fi", "spacecraft"),
    "city": ("cityscape", "urban"), "cityscape": ("city", "urban"), "street": ("urban",),
    "castle": ("fantasy", "medieval"), "dragon": ("fantasy", "creature"), "wizard": ("fantasy", "magic"),
    "witch": ("magic", "fantasy"), "elf": ("fantasy", "pointy ears"), "knight": ("armor", "medieval"),
    "samurai": ("japanese", "warrior"), "ninja": ("japanese",), "kimono": ("japanese clothes", "yukata"),
    "vampire": ("gothic", "horror"), "zombie": ("horror",), "ghost": ("horror", "spooky"),
    "steampunk": ("victorian", "gears"), "forest": ("nature", "trees"), "sunset": ("golden hour", "dusk"),
    "dawn": ("sunrise", "morning", "golden hour"), "sunrise": ("dawn", "morning", "golden hour"),
    "dusk": ("sunset", "evening", "golden hour"),
    "night": ("night sky", "dark"), "cat": ("animal", "feline"), "dog": ("animal", "canine"),
    "fox": ("animal",), "wolf": ("animal",), "harbor": ("port", "boats", "harbour"), "harbour": ("port", "boats"),
    "port": ("harbor",), "beach": ("ocean", "summer"), "ocean": ("sea", "beach"), "sea": ("ocean",),
    "snow": ("winter",), "winter": ("snow",), "rain": ("wet", "rainy"), "car": ("vehicle",),
    "bicycle": ("bike", "cycling"), "bike": ("bicycle",), "motorcycle": ("motorbike",),
    "pixel art": ("pixel", "8 bit", "sprite"), "oil painting": ("painting", "traditional media"),
    "watercolor": ("watercolor painting", "traditional media"), "watercolor painting": ("watercolor",),
    "sketch": ("drawing", "pencil"), "fisherman": ("fishing", "sea", "boat"), "armor": ("knight",), "sword": ("weapon",),
    "portrait": ("face",), "flowers": ("floral",), "flower": ("floral",), "horror": ("creepy", "dark"),
    "chibi": ("cute", "super deformed"), "cute": ("kawaii",), "fantasy": ("magic",), "magic": ("fantasy", "spell"),
    "food": ("cooking",), "underwater": ("ocean", "water"), "mermaid": ("underwater", "fantasy"),
    "sailor": ("sea", "ship"), "pirate": ("ship", "sea"), "moonlight": ("night",), "moon": ("night", "moonlight"),
    "cake": ("dessert", "food"), "dessert": ("food", "sweets"), "cookie": ("dessert", "baking", "food"),
    "ice cream": ("dessert", "food"), "pastry": ("dessert", "food"), "chocolate": ("dessert", "sweets"),
    "ramen": ("noodles", "food", "japanese food"), "sushi": ("japanese food", "food"), "pizza": ("food", "fast food"),
    "burger": ("food", "fast food"), "noodles": ("food",), "bread": ("food", "baking"), "fruit": ("food",),
    "sports car": ("car", "vehicle"), "truck": ("vehicle",),
    "fantasy art": ("fantasy",), "wyvern": ("fantasy", "creature"),
}

# Near-equivalents: a LoRA tagged with one of these is about what the prompt's word says. They
# count as the prompt's own concepts (a little below the word itself), unlike SYNONYMS, which are
# only related and never carry a LoRA alone. Keyed by singular form; the relation is not always
# symmetric ("kitten" is a cat, "cat" is not always a kitten).
ALIASES: dict[str, tuple[str, ...]] = {
    "kitty": ("cat", "kitten"), "kitten": ("cat", "kitty"), "cat": ("kitten", "kitty", "feline"),
    "feline": ("cat",), "puppy": ("dog",), "doggo": ("dog",), "pup": ("dog", "puppy"), "dog": ("puppy",),
    "bunny": ("rabbit",), "rabbit": ("bunny",), "stallion": ("horse",), "mare": ("horse",),
    "catgirl": ("cat girl", "cat ears", "nekomimi"), "cat girl": ("catgirl", "cat ears", "nekomimi"),
    "nekomimi": ("cat ears", "catgirl", "cat girl"), "neko": ("cat ears", "catgirl"),
    "foxgirl": ("fox girl", "fox ears"), "fox girl": ("foxgirl", "fox ears"), "kitsune": ("fox ears", "fox girl"),
    "doggirl": ("dog girl", "dog ears"), "dog girl": ("doggirl", "dog ears"), "bunny girl": ("rabbit ears", "bunny ears"),
    "dragon": ("wyvern", "drake"), "wyvern": ("dragon",), "drake": ("dragon",), "loong": ("chinese dragon",),
    "automobile": ("car",), "motorcar": ("car",), "car": ("automobile",),
    "sports car": ("supercar", "race car"), "supercar": ("sports car", "car"),
    "hypercar": ("supercar", "sports car", "car"), "race car": ("racing car", "sports car"),
    "racecar": ("race car", "racing car"), "motorbike": ("motorcycle",), "motorcycle": ("motorbike",),
    "chateau": ("castle",), "fortress": ("castle",), "citadel": ("castle", "fortress"),
    "moonlight": ("moonlit", "moon light"), "moonlit": ("moonlight",), "moon light": ("moonlight", "moonlit"),
    "neon lit": ("neon lights", "neon light", "neon glow"), "neon lights": ("neon light", "neon lit", "neon glow"),
    "neon light": ("neon lights", "neon lit", "neon glow"), "neon glow": ("neon lights", "neon light"),
    "neon sign": ("neon lights", "neon signs"),
    "golden hour": ("goldenhour", "golden light"), "goldenhour": ("golden hour",),
    "sumi e": ("sumie", "ink wash painting", "ink wash", "ink painting"), "sumie": ("sumi e", "ink wash painting"),
    "ink wash": ("ink wash painting", "sumi e", "ink painting", "ink"), "ink wash painting": ("ink wash", "sumi e"),
    "ink painting": ("ink wash painting", "ink wash", "ink"), "ink drawing": ("ink", "pen and ink"),
    "pen and ink": ("ink drawing", "ink"),
    "watercolor": ("watercolor painting", "watercolor medium"), "watercolor painting": ("watercolor",),
    "aquarelle": ("watercolor",),
    "pixelart": ("pixel art",), "pixel art": ("pixelart",), "8 bit": ("pixel art", "8bit"),
    "8bit": ("pixel art", "8 bit"), "16 bit": ("pixel art", "16bit"), "16bit": ("pixel art", "16 bit"),
    "pixelated": ("pixel art",), "pixel style": ("pixel art",),
    "3d render": ("3d rendering", "cgi", "3d render style"), "3d rendering": ("3d render", "cgi"),
    "cgi": ("3d render",), "octane render": ("3d render", "octane"), "blender": ("3d render",),
    "anime screencap": ("screencap", "anime screenshot"), "screencap": ("anime screencap",),
    "anime screenshot": ("anime screencap", "screencap"),
    "sci fi": ("science fiction", "scifi"), "science fiction": ("sci fi", "scifi"), "scifi": ("sci fi", "science fiction"),
    "dessert": ("desserts",), "sweets": ("dessert", "candy"), "cupcake": ("dessert", "cake"),
    "maid": ("maid outfit", "maid dress"), "maid outfit": ("maid", "maid dress", "maid uniform"),
    "maid dress": ("maid outfit", "maid"), "yukata": ("kimono",), "kimono": ("yukata",),
    "swimsuit": ("swimwear",), "lingerie": ("underwear",),
    "spaceship": ("spacecraft", "starship"), "spacecraft": ("spaceship",), "starship": ("spaceship",),
    "woods": ("forest",), "ocean": ("sea",), "sea": ("ocean",), "cityscape": ("city skyline",),
}

# Elderly people: "old <person>", "elderly <person>", "grandpa" and the like all ask for what a LoRA
# tags as "old man", "elderly", "wrinkled skin"... Terms for the other gender than the prompt's
# are left out; an unknown gender gets both at a lower weight.
# Words that alone mean an elderly person ("senior", "elder", "wrinkled" need a person noun:
# "senior citizen", but "senior developer", "elder dragon", "wrinkled shirt").
ELDERLY_WORDS = frozenset({
    "elderly", "grandpa", "grandma", "granny", "grandfather", "grandmother", "grandparent", "grandparents",
    "grandad", "granddad", "grandmom", "geriatric", "octogenarian", "nonagenarian", "pensioner", "retiree",
    "crone", "oldster", "old age", "old timer",
})
ELDER_NOUNS = frozenset({"elder", "elders"})  # only after another word: "village elder", not "elder dragon"
ELDERLY_ADJECTIVES = frozenset({"old", "elderly", "aged", "aging", "ageing", "senior", "wrinkled", "wizened"})
PERSON_NOUNS_MALE = frozenset({
    "man", "men", "gentleman", "guy", "king", "monk", "priest", "father", "dad", "grandfather", "grandpa", "lord",
    "husband", "cowboy", "lumberjack", "sir", "wizard", "hermit", "fisherman", "fishermen", "monarch", "emperor",
    "grandad", "granddad", "boy", "dude",
})
PERSON_NOUNS_FEMALE = frozenset({
    "woman", "women", "lady", "ladies", "queen", "witch", "nun", "widow", "mother", "mom", "grandmother", "grandma",
    "granny", "wife", "empress", "crone", "girl", "maiden", "matriarch", "nana", "grandmom",
})
PERSON_NOUNS = frozenset({
    "person", "people", "couple", "sailor", "farmer", "soldier", "warrior", "knight", "samurai", "pirate", "beggar",
    "merchant", "shopkeeper", "professor", "teacher", "doctor", "craftsman", "carpenter", "blacksmith", "shepherd",
    "sage", "mage", "captain", "veteran", "hunter", "miner", "peasant", "villager", "tailor", "baker", "cook",
    "chef", "scholar", "artist", "painter", "musician", "storyteller", "traveler", "traveller", "wanderer",
    "vendor", "gardener", "writer", "poet", "philosopher", "shaman", "healer", "gypsy", "nomad", "worker",
    "citizen", "resident", "patient", "parent", "grandparent", "grandparents", "face", "folk",
    "inventor", "scientist", "alchemist", "druid", "sorcerer", "sorceress", "rancher",
    "smith", "potter", "weaver", "fisher", "elf", "dwarf", "mentor", "master", "friend", "neighbor",
    "neighbour", "stranger", "local", "tribesman", "bard", "cleric", "paladin", "ranger", "general", "admiral",
}) | PERSON_NOUNS_MALE | PERSON_NOUNS_FEMALE
# (term, weight) for any elderly prompt; then per gender.
ELDERLY_TERMS: tuple[tuple[str, float], ...] = (
    ("elderly", 0.9), ("old person", 0.9), ("old people", 0.9), ("old age", 0.9), ("elderly person", 0.9),
    ("senior", 0.8), ("elder", 0.7), ("aged", 0.6), ("aging", 0.6), ("ageing", 0.6),
    ("wrinkled skin", 0.8), ("wrinkles", 0.7), ("wrinkly skin", 0.8), ("aged skin", 0.8), ("grandparents", 0.8),
)
ELDERLY_MALE_TERMS: tuple[str, ...] = ("old man", "elderly man", "grandfather", "grandpa", "old gentleman",
                                       "senior man")
ELDERLY_FEMALE_TERMS: tuple[str, ...] = ("old woman", "elderly woman", "old lady", "grandmother", "grandma",
                                         "granny", "senior woman")
# Phrases that are one specific idea though every word alone is generic ("old" + "man").
SPECIFIC_PHRASES = frozenset(
    {t for t, w in ELDERLY_TERMS if w >= 0.8} | set(ELDERLY_MALE_TERMS) | set(ELDERLY_FEMALE_TERMS)
    | {"old photo", "old photograph", "old film", "old school", "old fashioned", "old west", "old town"})

# Tags of a LoRA that draws one particular character or person: it is stacked only when the
# prompt names it (its title or first trigger word), never for the hair colour it shares.
CHARACTER_TAGS = frozenset({
    "character", "characters", "anime character", "game character", "video game character", "celebrity",
    "real person", "original character", "oc", "character lora",
})

# CivitAI's category tags ("character", "style", "clothing"...): they say what kind of resource a
# LoRA is, not what it draws, so they never name its subject.
CATEGORY_TAGS = frozenset({
    "character", "characters", "style", "styles", "concept", "concepts", "clothing", "clothes", "outfit",
    "base model", "poses", "pose", "background", "backgrounds", "tool", "tools", "buildings", "building",
    "vehicle", "vehicles", "objects", "object", "animal", "animals", "action", "assets", "celebrity",
    "lighting", "slider", "enhancer", "lora", "locon", "lycoris", "sdxl", "sd 1 5", "flux", "pony",
    "photography", "anime", "realistic", "art", "artstyle", "art style", "cartoon", "3d", "woman", "man",
    "girl", "boy", "female", "male", "1girl", "1boy", "solo", "no humans", "detail", "quality",
})

# Tags a style adds to the LoRA search.
STYLE_TAGS: dict[str, tuple[str, ...]] = {
    "realistic": ("photorealistic", "realistic", "photography"),
    "anime": ("anime", "anime style", "manga"),
    "artistic": ("painting", "art style", "artistic"),
    "3d": ("3d", "3d render"),
    "cartoon": ("cartoon", "cartoon style"),
    "pixel art": ("pixel art", "pixel"),
}

# Prompt words that mean the user asks for adult content (so NSFW models are not penalised).
NSFW_WORDS = frozenset({
    "nsfw", "nude", "naked", "nudity", "explicit", "topless", "bottomless", "sex", "porn", "pornographic",
    "erotic", "hentai", "lewd", "rating explicit", "rating questionable", "nipples", "genitals", "uncensored",
})

# base model hints in a prompt -> CivitAI base-model string
BASE_MODEL_HINTS: tuple[tuple[str, str], ...] = (
    ("score 9", "Pony"), ("score 8 up", "Pony"), ("score 7 up", "Pony"), ("source pony", "Pony"),
    ("pony diffusion", "Pony"), ("ponyxl", "Pony"), ("pony xl", "Pony"),
    ("illustrious", "Illustrious"), ("noobai", "NoobAI"), ("noob ai", "NoobAI"),
    ("flux", "Flux.1 D"), ("sdxl", "SDXL 1.0"), ("sd xl", "SDXL 1.0"), ("sd 1 5", "SD 1.5"), ("sd15", "SD 1.5"),
    ("sd1 5", "SD 1.5"), ("sd3", "SD 3.5"), ("sd 3 5", "SD 3.5"), ("sd3 5", "SD 3.5"), ("auraflow", "AuraFlow"),
)
# The same words name the family to run, not what the picture shows: they are never concepts,
# so "a denim jacket, flux" does not look for LoRAs titled "... (Flux)".
# "sd" is what is left of "SD 1.5" once the prompt is cut at its full stops.
BASE_MODEL_WORDS = frozenset(h for h, _ in BASE_MODEL_HINTS) | {"sd"}

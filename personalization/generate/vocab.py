"""Word lists for the generator: countries, names, streets, places, products, devices.

Names come from `names` (Zipf-like frequencies). Streets, cities and postcodes come from a
few thousand Faker calls per locale while the lists are built, never per generated row:
rows are sampled from these arrays with numpy, by the probabilities attached to them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
from faker import Faker

from personalization.generate.names import country_names, zipf_with_top

SHOP_DOMAIN = "northwind-outfitters.example"

# (country, faker locale, language, currency, weight, street number first?)
COUNTRIES = (
    ("US", "en_US", "en", "USD", 0.30, True),
    ("GB", "en_GB", "en", "GBP", 0.20, True),
    ("DE", "de_DE", "de", "EUR", 0.18, False),
    ("FR", "fr_FR", "fr", "EUR", 0.12, True),
    ("NL", "nl_NL", "nl", "EUR", 0.10, False),
    ("ES", "es_ES", "es", "EUR", 0.10, False),
)
FX_FROM_EUR = {"USD": 1.10, "GBP": 0.86, "EUR": 1.0}

# Phone number templates per country: '#' takes the next digit of the national significant
# number (NSN); everything else is literal. The first template is E.164, the rest are the
# ways people actually type numbers, so the same number shows up in several spellings.
PHONE_NSN = {  # (fixed prefix, number of random digits after it)
    "US": ("", 10), "GB": ("20", 8), "DE": ("15", 9), "FR": ("6", 8), "NL": ("6", 8), "ES": ("6", 8),
}
PHONE_TEMPLATES = {
    "US": ("+1##########", "+1 ### ### ####", "(###) ###-####", "###-###-####", "##########"),
    "GB": ("+44##########", "+44 ## #### ####", "0## #### ####", "0##-####-####", "0##########"),
    "DE": ("+49###########", "+49 ### ########", "0### ########", "0###-########", "0###########"),
    "FR": ("+33#########", "+33 # ## ## ## ##", "0# ## ## ## ##", "0#.##.##.##.##", "0#########"),
    "NL": ("+31#########", "+31 # ########", "0#-########", "0# #### ####", "0#########"),
    "ES": ("+34#########", "+34 ### ### ###", "### ## ## ##", "### ### ###", "#########"),
}

FREE_MAIL = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"),
    "GB": ("gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com", "yahoo.co.uk"),
    "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
    "NL": ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"),
    "ES": ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"),
}
MAIL_WEIGHTS = np.array([0.40, 0.20, 0.15, 0.15, 0.10])

# Formal name -> nickname, as people fill in forms (one direction is enough for planting).
NICKNAMES = {
    # English
    "Robert": "Bob", "William": "Bill", "Richard": "Rick", "James": "Jim", "Michael": "Mike",
    "Thomas": "Tom", "Joseph": "Joe", "Christopher": "Chris", "Daniel": "Dan", "Matthew": "Matt",
    "Anthony": "Tony", "Steven": "Steve", "Andrew": "Andy", "Edward": "Ed", "Benjamin": "Ben",
    "Samuel": "Sam", "Alexander": "Alex", "Nicholas": "Nick", "Jonathan": "Jon", "Timothy": "Tim",
    "John": "Jack", "David": "Dave", "Peter": "Pete", "Charles": "Charlie", "Elizabeth": "Liz",
    "Jennifer": "Jen", "Katherine": "Kate", "Margaret": "Maggie", "Patricia": "Pat", "Susan": "Sue",
    "Rebecca": "Becky", "Jessica": "Jess", "Deborah": "Debbie", "Victoria": "Vicky", "Kimberly": "Kim",
    "Christine": "Chris", "Alexandra": "Alex", "Barbara": "Barb", "Sarah": "Sally", "Dorothy": "Dot",
    # German
    "Johannes": "Hannes", "Wolfgang": "Wolf", "Friedrich": "Fritz", "Stefanie": "Steffi",
    "Franziska": "Franzi", "Matthias": "Matze", "Maximilian": "Max", "Andreas": "Andi",
    "Christian": "Chris", "Ursula": "Uschi", "Monika": "Moni", "Sabine": "Bine", "Elisabeth": "Lisa",
    # French
    "Jean-Baptiste": "JB", "Nicolas": "Nico", "Philippe": "Phil", "Christophe": "Chris",
    "Catherine": "Cathy", "Isabelle": "Isa", "Nathalie": "Nath", "Valérie": "Val",
    # Dutch
    "Cornelis": "Kees", "Hendrik": "Henk", "Wilhelmina": "Mien", "Willem": "Wim", "Gerrit": "Gert",
    "Pieter": "Piet", "Jacob": "Jaap", "Johanna": "Jo", "Cornelia": "Corrie", "Hendrika": "Riek",
    # Spanish
    "Francisco": "Paco", "José": "Pepe", "Manuel": "Manolo", "Jesús": "Chus", "Dolores": "Lola",
    "Antonio": "Toño", "Javier": "Javi", "Alejandro": "Álex", "María Carmen": "Mari Carmen",
    "Josefa": "Pepa", "Cristina": "Cris",
}

CATEGORIES = ("apparel", "shoes", "beauty", "home", "kitchen", "electronics", "sports", "books")
# Companion category: what is often bought together with a product of the key category.
COMPANION_CATEGORY = {
    "apparel": "shoes", "shoes": "apparel", "beauty": "beauty", "home": "kitchen",
    "kitchen": "home", "electronics": "electronics", "sports": "shoes", "books": "books",
}
CATEGORY_PRICE_EUR = {  # median price of the category
    "apparel": 35.0, "shoes": 80.0, "beauty": 18.0, "home": 45.0, "kitchen": 30.0,
    "electronics": 120.0, "sports": 40.0, "books": 15.0,
}
PRODUCT_NOUNS = {
    "apparel": ("T-Shirt", "Hoodie", "Jeans", "Dress", "Jacket", "Sweater", "Shirt", "Skirt"),
    "shoes": ("Sneakers", "Boots", "Sandals", "Loafers", "Trail Shoes", "Slippers"),
    "beauty": ("Face Cream", "Lip Balm", "Shampoo", "Serum", "Body Lotion", "Perfume"),
    "home": ("Throw Blanket", "Cushion", "Vase", "Lamp", "Rug", "Candle", "Mirror"),
    "kitchen": ("Chef Knife", "Frying Pan", "Coffee Mug", "Teapot", "Cutting Board", "Mixing Bowl"),
    "electronics": ("Headphones", "Speaker", "Power Bank", "Smartwatch", "Charger", "E-Reader"),
    "sports": ("Yoga Mat", "Water Bottle", "Running Shorts", "Dumbbells", "Backpack", "Cap"),
    "books": ("Cookbook", "Novel", "Travel Guide", "Biography", "Notebook", "Poetry Collection"),
}
PRODUCT_ADJECTIVES = ("Classic", "Organic", "Everyday", "Premium", "Vintage", "Compact",
                      "Essential", "Nordic", "Urban", "Soft", "Bold", "Eco", "Deluxe", "Studio")

DEVICES = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS = np.array([0.55, 0.35, 0.10])
USER_AGENTS = {
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
    ),
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    ),
}

# Street names found in thousands of towns (national street-name rankings, docs/generator.md),
# most common first; the rest of a country's streets come from Faker.
COMMON_STREETS = {
    "US": ("Second Street", "Third Street", "First Street", "Fourth Street", "Park Street", "Fifth Street",
           "Main Street", "Sixth Street", "Oak Street", "Seventh Street", "Pine Street", "Maple Street",
           "Cedar Street", "Elm Street", "Washington Street", "Lake Street", "Hill Street"),
    "GB": ("High Street", "Station Road", "Main Street", "Park Road", "Church Road", "Church Street",
           "London Road", "Victoria Road", "Green Lane", "Manor Road", "Church Lane", "Park Avenue",
           "The Avenue", "The Crescent", "Queens Road", "New Road", "Grange Road"),
    "DE": ("Hauptstraße", "Schulstraße", "Gartenstraße", "Dorfstraße", "Bahnhofstraße", "Bergstraße",
           "Birkenweg", "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße", "Schillerstraße",
           "Goethestraße", "Wiesenweg", "Amselweg", "Jahnstraße", "Buchenweg"),
    "FR": ("rue de l'Église", "place de l'Église", "Grande Rue", "rue du Moulin", "place de la Mairie",
           "rue du Château", "rue des Écoles", "rue de la Gare", "rue Principale", "rue Pasteur",
           "rue Victor Hugo", "rue de la Mairie", "impasse du Moulin", "rue Jean Jaurès", "rue de la Fontaine"),
    "NL": ("Kerkstraat", "Schoolstraat", "Molenstraat", "Dorpsstraat", "Molenweg", "Julianastraat",
           "Nieuwstraat", "Wilhelminastraat", "Beatrixstraat", "Stationsstraat", "Industrieweg",
           "Sportlaan", "Kastanjelaan", "Eikenlaan", "Parallelweg"),
    "ES": ("Calle Mayor", "Calle Real", "Calle Iglesia", "Plaza Mayor", "Calle Nueva", "Calle Constitución",
           "Plaza España", "Calle Sol", "Calle San José", "Calle Cervantes", "Calle Norte", "Calle Luna",
           "Calle Libertad", "Calle Mar", "Calle Ancha"),
}
TOP_STREET_SHARE = 0.005  # the most common street name holds ~0.5 % of a country's addresses
# Share of the population living in the largest city (rounded national statistics): city
# sizes follow Zipf's law below it.
TOP_CITY_SHARE = {"US": 0.026, "GB": 0.13, "DE": 0.044, "FR": 0.032, "NL": 0.05, "ES": 0.07}
POSTCODES_PER_LOCALE = 2000  # spread over the cities in proportion to their size
_CITY_DRAWS = 1500
_STREET_DRAWS = 1500


def ascii_fold(text: str) -> str:
    """`Jürgen Müller-Lüdenscheidt` -> `jurgenmuller-ludenscheidt` (for e-mail local parts)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-")


@dataclass(frozen=True)
class LocaleVocab:
    """Sampling arrays of one country (object arrays of str) and their probabilities."""

    first_female: np.ndarray
    first_male: np.ndarray
    last: np.ndarray
    streets: np.ndarray
    cities: np.ndarray  # one entry per (city, postcode) place
    postcodes: np.ndarray
    p_first_female: np.ndarray
    p_first_male: np.ndarray
    p_last: np.ndarray
    p_streets: np.ndarray
    p_cities: np.ndarray


def load_locale(code: str, locale: str, seed: int) -> LocaleVocab:
    """Names (see `names`), streets and places of one country, with their probabilities."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = np.random.default_rng([seed, 5, sum(map(ord, code))])
    faker_streets = sorted({fake.street_name() for _ in range(_STREET_DRAWS)} - set(COMMON_STREETS[code]))
    streets = list(COMMON_STREETS[code]) + [faker_streets[i] for i in rng.permutation(len(faker_streets))]
    cities = sorted({fake.city() for _ in range(_CITY_DRAWS)})
    cities = [cities[i] for i in rng.permutation(len(cities))]  # rank = size order
    p_city = zipf_with_top(len(cities), TOP_CITY_SHARE[code])
    n_codes = 1 + np.floor(p_city * POSTCODES_PER_LOCALE).astype(int)
    postcodes, seen = [], set()
    while len(postcodes) < n_codes.sum():
        code_ = fake.postcode()
        if code_ not in seen:
            seen.add(code_)
            postcodes.append(code_)
    place_city = np.repeat(np.arange(len(cities)), n_codes)
    names = country_names(code)
    return LocaleVocab(
        first_female=names["first_female"].values, first_male=names["first_male"].values,
        last=names["last"].values, streets=np.array(streets, dtype=object),
        cities=np.array(cities, dtype=object)[place_city], postcodes=np.array(postcodes, dtype=object),
        p_first_female=names["first_female"].p, p_first_male=names["first_male"].p, p_last=names["last"].p,
        p_streets=zipf_with_top(len(streets), TOP_STREET_SHARE),
        p_cities=(p_city / n_codes)[place_city],
    )


@cache
def load_all(seed: int) -> dict[str, LocaleVocab]:
    """Vocabulary for every country in `COUNTRIES`, keyed by country code."""
    return {code: load_locale(code, locale, seed) for code, locale, *_ in COUNTRIES}

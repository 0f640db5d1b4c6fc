"""The foreign generator's own vocabulary: names, streets, towns, phones and mail domains of
eight countries, written out by hand (no Faker, nothing shared with personalization.generate).

Lists are ordered from common to rare: the generator draws from them with Zipf-like weights,
so the first names and streets of each list are shared by very many people (namesakes, and
"Hauptstrasse 1" in dozens of towns), as in real registers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    language: str
    currency: str
    utc_offset: str          # written on some timestamps (local time with its offset)
    calling_code: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]  # "{n}" marks where the house number goes
    towns: tuple[tuple[str, str], ...]  # (town, first postcode of the town)
    domains: tuple[str, ...]


def _t(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


def _towns(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(p.strip().split(":")) for p in text.split(";") if p.strip())  # type: ignore[misc]


COUNTRIES: tuple[Country, ...] = (
    Country(
        "DE", 0.24, "de", "EUR", "+02:00", "49",
        _t("Anna, Maria, Ursula, Monika, Petra, Sabine, Katharina, Julia, Lena, Laura, Sophie, "
           "Jana, Sandra, Claudia, Andrea, Stefanie, Birgit, Jutta, Renate, Gisela, Helga, Anne-Marie, "
           "Hannah, Lea, Emma, Mia, Johanna, Charlotte, Greta, Frieda"),
        _t("Thomas, Michael, Andreas, Stefan, Peter, Klaus, Jürgen, Wolfgang, Frank, Markus, "
           "Alexander, Christian, Tobias, Jan, Lukas, Felix, Maximilian, Paul, Jonas, Leon, "
           "Johannes, Matthias, Sebastian, Uwe, Dieter, Günter, Horst, Björn, Kai, Ole"),
        _t("Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, "
           "Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, "
           "Braun, Krüger, Hofmann, Hartmann, Lange, Schmitt, Werner, Schmitz, Krause, Meier, "
           "Lehmann, Schmid, Schulze, Maier, Köhler, Herrmann, König, Walter, Mayer, Huber, "
           "Kaiser, Fuchs, Peters, Lang, Scholz, Möller, Weiß, Jung, Hahn, Vogel, Friedrich, "
           "Keller, Günther, Frank, Berger, Winkler, Roth, Beck, Lorenz, Baumann, Franke, Albrecht"),
        _t("Hauptstraße {n}, Bahnhofstraße {n}, Dorfstraße {n}, Schulstraße {n}, Gartenstraße {n}, "
           "Bergstraße {n}, Lindenstraße {n}, Kirchstraße {n}, Waldstraße {n}, Ringstraße {n}, "
           "Am Markt {n}, Mühlenweg {n}, Birkenweg {n}, Goethestraße {n}, Schillerstraße {n}, "
           "Friedhofstraße {n}, Wiesenweg {n}, Rosenstraße {n}, Poststraße {n}, Feldstraße {n}"),
        _towns("Berlin:10115; Hamburg:20095; München:80331; Köln:50667; Frankfurt am Main:60311; "
               "Stuttgart:70173; Düsseldorf:40213; Leipzig:04109; Dortmund:44135; Essen:45127; "
               "Bremen:28195; Dresden:01067; Hannover:30159; Nürnberg:90402; Duisburg:47051; "
               "Bochum:44787; Wuppertal:42103; Bielefeld:33602; Bonn:53111; Münster:48143; "
               "Neustadt:67433; Freiburg im Breisgau:79098; Kassel:34117; Lübeck:23552; Erfurt:99084; "
               "Rostock:18055; Ulm:89073; Passau:94032; Görlitz:02826; Husum:25813; Cham:93413; "
               "Weiden:92637; Lindau:88131; Eschwege:37269; Plön:24306; Prüm:54595; Zell:56856"),
        _t("gmx.de, web.de, t-online.de, gmail.com, googlemail.com, outlook.de, yahoo.de, "
           "posteo.de, freenet.de, icloud.com"),
    ),
    Country(
        "AT", 0.05, "de", "EUR", "+02:00", "43",
        _t("Anna, Maria, Elisabeth, Theresia, Katharina, Sarah, Lena, Hannah, Sophie, Valentina, "
           "Magdalena, Christina, Barbara, Johanna, Verena"),
        _t("Josef, Johann, Franz, Karl, Thomas, Michael, Lukas, Florian, David, Tobias, Stefan, "
           "Markus, Alexander, Christoph, Bernhard"),
        _t("Gruber, Huber, Bauer, Wagner, Müller, Pichler, Steiner, Moser, Mayer, Hofer, Leitner, "
           "Berger, Fuchs, Eder, Fischer, Schmid, Winkler, Weber, Schwarz, Maier, Reiter, Brunner"),
        _t("Hauptstraße {n}, Kirchengasse {n}, Bahnhofstraße {n}, Dorfstraße {n}, Schulgasse {n}, "
           "Lindenweg {n}, Am Anger {n}, Wiener Straße {n}"),
        _towns("Wien:1010; Graz:8010; Linz:4020; Salzburg:5020; Innsbruck:6020; Klagenfurt:9020; "
               "Villach:9500; Wels:4600; Sankt Pölten:3100; Dornbirn:6850; Steyr:4400; Neustadt:2700"),
        _t("gmx.at, aon.at, chello.at, gmail.com, a1.net, outlook.com"),
    ),
    Country(
        "CH", 0.04, "de", "EUR", "+02:00", "41",
        _t("Anna, Maria, Ursula, Ruth, Elisabeth, Sandra, Nicole, Laura, Sara, Lea, Chiara, "
           "Céline, Noémie, Anja, Regula"),
        _t("Daniel, Peter, Thomas, Martin, Hans, Christian, Marco, Andreas, Reto, Urs, Beat, "
           "Luca, Noah, Jérôme, Lukas"),
        _t("Müller, Meier, Schmid, Keller, Weber, Huber, Schneider, Meyer, Steiner, Fischer, "
           "Gerber, Brunner, Baumann, Frei, Zimmermann, Moser, Widmer, Wyss, Graf, Roth"),
        _t("Hauptstrasse {n}, Bahnhofstrasse {n}, Dorfstrasse {n}, Kirchweg {n}, Schulhausstrasse {n}, "
           "Rue de la Gare {n}, Via Cantonale {n}"),
        _towns("Zürich:8001; Genève:1201; Basel:4001; Bern:3011; Lausanne:1003; Winterthur:8400; "
               "Luzern:6003; St. Gallen:9000; Lugano:6900; Biel/Bienne:2502; Thun:3600; Chur:7000"),
        _t("bluewin.ch, gmx.ch, gmail.com, sunrise.ch, hispeed.ch, outlook.com"),
    ),
    Country(
        "US", 0.22, "en", "USD", "-05:00", "1",
        _t("Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen, "
           "Lisa, Nancy, Betty, Sandra, Ashley, Emily, Michelle, Amanda, Melissa, Olivia, Emma, "
           "Ava, Sophia, Isabella, Mia, Abigail, Madison, Chloe, Grace, Zoë"),
        _t("James, Robert, John, Michael, David, William, Richard, Joseph, Thomas, Charles, "
           "Christopher, Daniel, Matthew, Anthony, Mark, Donald, Steven, Paul, Andrew, Joshua, "
           "Kevin, Brian, George, Timothy, Ryan, Jacob, Ethan, Noah, Liam, José"),
        _t("Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, "
           "Hernandez, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, "
           "Lee, Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, "
           "Young, Allen, King, Wright, Scott, Torres, Nguyen, Hill, Flores, Green, Adams, Nelson, "
           "Baker, Hall, Rivera, Campbell, Mitchell, Carter, Roberts, O'Brien, McDonald"),
        _t("{n} Main Street, {n} Oak Street, {n} Maple Avenue, {n} Park Avenue, {n} Elm Street, "
           "{n} 2nd Street, {n} Washington Street, {n} Lake Drive, {n} Cedar Lane, {n} Pine Street, "
           "{n} Church Street, {n} Highland Avenue, {n} Sunset Boulevard, {n} Mill Road"),
        _towns("New York:10001; Los Angeles:90001; Chicago:60601; Houston:77001; Phoenix:85001; "
               "Philadelphia:19101; San Antonio:78201; San Diego:92101; Dallas:75201; Austin:73301; "
               "Springfield:62701; Franklin:37064; Greenville:29601; Bristol:06010; Clinton:52732; "
               "Fairview:97024; Salem:97301; Madison:53703; Georgetown:78626; Arlington:22201; "
               "Columbus:43085; Portland:97201; Jackson:39201; Burlington:05401; Ashland:97520"),
        _t("gmail.com, yahoo.com, hotmail.com, aol.com, outlook.com, icloud.com, comcast.net, "
           "msn.com, verizon.net, att.net"),
    ),
    Country(
        "GB", 0.14, "en", "GBP", "+01:00", "44",
        _t("Olivia, Amelia, Isla, Ava, Emily, Sophie, Grace, Lily, Freya, Charlotte, Susan, "
           "Margaret, Sarah, Helen, Claire, Rachel, Siobhán, Niamh, Eleanor, Poppy"),
        _t("Oliver, George, Harry, Jack, Jacob, Charlie, Thomas, Oscar, William, James, David, "
           "John, Paul, Mark, Andrew, Richard, Gareth, Rhys, Seán, Alfie"),
        _t("Smith, Jones, Williams, Taylor, Brown, Davies, Evans, Wilson, Thomas, Johnson, "
           "Roberts, Robinson, Thompson, Wright, Walker, White, Edwards, Hughes, Green, Hall, "
           "Lewis, Harris, Clarke, Patel, Jackson, Wood, Turner, Martin, Cooper, Hill, Ward, "
           "Morris, Moore, Clark, Lee, King, Baker, Harrison, Morgan, Allen, O'Connor, Khan"),
        _t("{n} High Street, {n} Station Road, {n} Main Street, {n} Park Road, {n} Church Road, "
           "{n} Church Street, {n} London Road, {n} Victoria Road, {n} Green Lane, {n} Manor Road, "
           "{n} Kings Road, {n} The Crescent"),
        _towns("London:EC1A 1BB; Birmingham:B1 1AA; Manchester:M1 1AE; Leeds:LS1 1UR; "
               "Glasgow:G1 1XQ; Liverpool:L1 8JQ; Bristol:BS1 4ST; Sheffield:S1 2HE; "
               "Edinburgh:EH1 1YZ; Cardiff:CF10 1EP; Newport:NP20 1GA; Richmond:TW9 1DN; "
               "Ashford:TN23 1AA; Bangor:LL57 1UT; Wells:BA5 2RB; Kingston:KT1 1EU; Ely:CB7 4AA"),
        _t("gmail.com, hotmail.co.uk, yahoo.co.uk, btinternet.com, outlook.com, sky.com, "
           "icloud.com, live.co.uk"),
    ),
    Country(
        "FR", 0.13, "fr", "EUR", "+02:00", "33",
        _t("Marie, Nathalie, Isabelle, Sylvie, Catherine, Françoise, Valérie, Sandrine, Céline, "
           "Camille, Léa, Manon, Chloé, Inès, Emma, Jade, Louise, Hélène, Élodie, Anaïs"),
        _t("Jean, Pierre, Michel, Philippe, Alain, Nicolas, Christophe, Patrick, Frédéric, "
           "Laurent, Stéphane, Julien, Thomas, Lucas, Hugo, Louis, Gabriel, Arthur, Raphaël, Théo"),
        _t("Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, "
           "Simon, Laurent, Lefebvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, "
           "Morel, Girard, André, Lefèvre, Mercier, Dupont, Lambert, Bonnet, François, Martinez"),
        _t("{n} rue de la République, {n} rue Victor Hugo, {n} Grande Rue, {n} rue de l'Église, "
           "{n} rue Pasteur, {n} avenue Jean Jaurès, {n} place de la Mairie, {n} rue du Moulin, "
           "{n} chemin des Vignes, {n} boulevard Gambetta"),
        _towns("Paris:75001; Marseille:13001; Lyon:69001; Toulouse:31000; Nice:06000; "
               "Nantes:44000; Strasbourg:67000; Montpellier:34000; Bordeaux:33000; Lille:59000; "
               "Rennes:35000; Reims:51100; Saint-Étienne:42000; Le Havre:76600; Dijon:21000; "
               "Angers:49000; Nîmes:30000; Villeneuve:04180; Saint-Denis:93200"),
        _t("orange.fr, gmail.com, free.fr, sfr.fr, laposte.net, hotmail.fr, yahoo.fr, wanadoo.fr"),
    ),
    Country(
        "PL", 0.10, "pl", "EUR", "+02:00", "48",
        _t("Anna, Maria, Katarzyna, Małgorzata, Agnieszka, Barbara, Ewa, Krystyna, Elżbieta, "
           "Zofia, Magdalena, Joanna, Aleksandra, Monika, Zuzanna, Julia, Wiktoria, Łucja"),
        _t("Piotr, Krzysztof, Andrzej, Tomasz, Paweł, Jan, Michał, Marcin, Stanisław, Jakub, "
           "Adam, Marek, Łukasz, Grzegorz, Mateusz, Wojciech, Mariusz, Dariusz"),
        _t("Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, Zieliński, "
           "Szymański, Woźniak, Dąbrowski, Kozłowski, Jankowski, Mazur, Kwiatkowski, Krawczyk, "
           "Piotrowski, Grabowski, Nowakowski, Pawłowski, Michalski, Król"),
        _t("ul. Główna {n}, ul. Polna {n}, ul. Leśna {n}, ul. Słoneczna {n}, ul. Krótka {n}, "
           "ul. Szkolna {n}, ul. Ogrodowa {n}, ul. Lipowa {n}, ul. Kościuszki {n}, ul. Mickiewicza {n}"),
        _towns("Warszawa:00-001; Kraków:30-001; Łódź:90-001; Wrocław:50-001; Poznań:60-001; "
               "Gdańsk:80-001; Szczecin:70-001; Bydgoszcz:85-001; Lublin:20-001; Białystok:15-001; "
               "Katowice:40-001; Gdynia:81-001; Częstochowa:42-200; Radom:26-600; Toruń:87-100"),
        _t("wp.pl, onet.pl, interia.pl, gmail.com, o2.pl, op.pl, gazeta.pl"),
    ),
    Country(
        "SE", 0.08, "sv", "EUR", "+02:00", "46",
        _t("Maria, Elisabeth, Anna, Kristina, Margareta, Eva, Linnéa, Karin, Birgitta, Sara, "
           "Åsa, Ingrid, Emma, Ebba, Maja, Saga, Wilma, Märta"),
        _t("Lars, Karl, Erik, Anders, Johan, Per, Nils, Mikael, Jan, Hans, Björn, Olof, "
           "Gustav, Oskar, Axel, Åke, Göran, Sören"),
        _t("Andersson, Johansson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson, "
           "Svensson, Gustafsson, Pettersson, Jonsson, Jansson, Hansson, Bengtsson, Jönsson, "
           "Lindberg, Jakobsson, Magnusson, Lindström, Åberg, Öberg"),
        _t("Storgatan {n}, Kyrkogatan {n}, Drottninggatan {n}, Skolgatan {n}, Järnvägsgatan {n}, "
           "Nygatan {n}, Västra vägen {n}, Björkvägen {n}"),
        _towns("Stockholm:111 20; Göteborg:411 01; Malmö:211 20; Uppsala:753 10; Västerås:722 10; "
               "Örebro:702 10; Linköping:582 20; Helsingborg:252 20; Jönköping:553 20; Norrköping:602 20; "
               "Lund:222 20; Umeå:903 20; Gävle:802 50; Borås:503 30; Södertälje:151 20"),
        _t("telia.com, gmail.com, hotmail.se, outlook.com, yahoo.se, bredband.net, spray.se"),
    ),
)

# Nicknames some people use in one system and not in the other (shared across countries).
NICKNAMES: dict[str, str] = {
    "Katharina": "Kathi", "Alexander": "Alex", "Johannes": "Hannes", "Maximilian": "Max",
    "Elisabeth": "Lisa", "Christian": "Chris", "Robert": "Bob", "William": "Bill",
    "Richard": "Dick", "Elizabeth": "Liz", "Jennifer": "Jen", "Michael": "Mike",
    "Joseph": "Joe", "Thomas": "Tom", "Andrew": "Andy", "Margaret": "Maggie",
    "Małgorzata": "Gosia", "Katarzyna": "Kasia", "Aleksandra": "Ola", "Krzysztof": "Krzyś",
    "Nicolas": "Nico", "Frédéric": "Fred", "Stéphane": "Steph", "Kristina": "Kicki",
}

PRODUCT_CATEGORIES = ("garden", "toys", "outdoor", "stationery", "pets", "audio", "bikes",
                      "tea")
PRODUCT_WORDS = ("Classic", "Pro", "Mini", "Eco", "Deluxe", "Basic", "Travel", "Family",
                 "Urban", "Nordic")
DEVICES = ("desktop", "mobile", "tablet")
USER_AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
               "Mozilla/5.0 (Linux; Android 14)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)")

# The long tail: most people do not carry one of the few dozen commonest names, nor live in
# one of the commonest streets. Rarer surnames (and street names built from them) are put
# together from these parts, per naming tradition; about half the people draw from the tail.
SURNAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "german": (_t("Lind, Berg, Stein, Wald, Rosen, Hagen, Eich, Kirch, Brunn, Feld, Holz, "
                  "Sommer, Winter, Kalt, Gross, Neu, Alt, Hoch, Grün, Weiß, Schwarz, Rot, "
                  "Hof, Bühl, Strauß, Dorn, Kessel, Rein, Tann, Ober, Unter, Mittel"),
               _t("mann, er, berg, feld, hoff, meier, ke, inger, bach, stein, hausen, ner, "
                  "reiter, huber, mayr, müller, wald, horst, beck, brink")),
    "english": (_t("Ash, Brook, Fair, Hart, Kings, Lang, Moor, North, Oak, Red, Stan, West, "
                   "Whit, Wood, Bar, Black, Brad, Cal, Dun, Fox, Glen, Holl, Marsh, Pen"),
                _t("ford, ley, ton, wood, field, worth, by, ham, well, more, dale, wick, "
                   "son, man, er, bury, combe, hurst, ridge, stone")),
    "french": (_t("Beau, Bel, Bon, Cha, Dela, Des, Fon, Gau, Lar, Mar, Mont, Per, Ri, Rou, "
                  "Sau, Tho, Val, Ver, Bré, Clé"),
               _t("champ, court, fort, lain, lier, mont, noir, ret, ron, rot, tel, vier, "
                  "zel, det, don, gny, lot, rand, vin, ville")),
    "polish": (_t("Adam, Bart, Cich, Dud, Gór, Jas, Kal, Kos, Krze, Lis, Mal, Now, Ost, Pał, "
                  "Rud, Sob, Tar, Wal, Zaj, Żuk"),
               _t("owski, ewski, czyk, czak, iak, ek, ski, cki, ńska, uk, ik, owicz, ewicz, "
                  "ała, ota, ński")),
    "swedish": (_t("Berg, Lind, Ek, Sjö, Ström, Holm, Dahl, Ny, Sand, Sten, Gran, Ås, Björk, "
                   "Fors, Hed, Löv, Rosen, Wall, Åker, Öst"),
                _t("sson, berg, ström, qvist, gren, lund, dahl, man, borg, strand, vall, "
                   "blad, näs, holm, by, feldt")),
}
TRADITION = {"DE": "german", "AT": "german", "CH": "german", "US": "english", "GB": "english",
             "FR": "french", "PL": "polish", "SE": "swedish"}

# Street names made from a tail name ("{s}"), per country; "{n}" is the house number.
STREET_TAIL: dict[str, tuple[str, ...]] = {
    "DE": ("{s}straße {n}", "{s}weg {n}", "{s}allee {n}"), "AT": ("{s}gasse {n}", "{s}straße {n}"),
    "CH": ("{s}strasse {n}", "{s}weg {n}"), "US": ("{n} {s} Street", "{n} {s} Avenue", "{n} {s} Road"),
    "GB": ("{n} {s} Road", "{n} {s} Lane", "{n} {s} Close"), "FR": ("{n} rue {s}", "{n} allée {s}"),
    "PL": ("ul. {s} {n}",), "SE": ("{s}gatan {n}", "{s}vägen {n}"),
}

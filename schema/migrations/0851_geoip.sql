-- Issue 19, where traffic comes from: country, city and AS of an address, from MaxMind-format
-- databases (GeoLite2 / GeoIP2 / IPinfo .mmdb) the user supplies. `packetlake enrich
-- --geoip-country/--geoip-city/--geoip-asn` copies every network of a file into these tables
-- (one partition per load, `version`), then reloads the ip_trie dictionaries, which read the
-- newest load only, and drops the older partitions: reports and the console call dictGet on
-- them at query time, so the packets table stays as it is and a new file takes effect without
-- a restart. Empty until a file is loaded: dictGet then answers '' and 0.
CREATE TABLE IF NOT EXISTS {database}.geoip_country
(
    version      UInt64,
    prefix       String,
    country_code LowCardinality(String),
    country      LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY version
ORDER BY prefix
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {database}.geoip_city
(
    version      UInt64,
    prefix       String,
    country_code LowCardinality(String),
    subdivision  LowCardinality(String),
    city         String,
    latitude     Float64,
    longitude    Float64
)
ENGINE = MergeTree
PARTITION BY version
ORDER BY prefix
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {database}.geoip_asn
(
    version UInt64,
    prefix  String,
    asn     UInt32,
    asn_org String
)
ENGINE = MergeTree
PARTITION BY version
ORDER BY prefix
SETTINGS non_replicated_deduplication_window = 10000;

-- One row per load: which file, its SHA-256 (a restart does not reload an unchanged file) and
-- how many networks it held.
CREATE TABLE IF NOT EXISTS {database}.geoip_loads
(
    kind      LowCardinality(String),
    version   UInt64,
    path      String,
    sha256    String,
    db_type   String,
    build_at  DateTime,
    networks  UInt64,
    loaded_at DateTime64(3)
)
ENGINE = MergeTree
ORDER BY (kind, version)
SETTINGS non_replicated_deduplication_window = 10000;

-- LIFETIME is a safety net (another server of a cluster, a load interrupted before its
-- reload): the enricher reloads the dictionary itself after each load.
CREATE DICTIONARY IF NOT EXISTS {database}.geoip_country_dict
(
    prefix       String,
    country_code String,
    country      String
)
PRIMARY KEY prefix
SOURCE(CLICKHOUSE(QUERY 'SELECT prefix, country_code, country FROM {database}.geoip_country WHERE version = (SELECT max(version) FROM {database}.geoip_country)'))
LAYOUT(IP_TRIE())
LIFETIME(MIN 300 MAX 600);

CREATE DICTIONARY IF NOT EXISTS {database}.geoip_city_dict
(
    prefix       String,
    country_code String,
    subdivision  String,
    city         String,
    latitude     Float64,
    longitude    Float64
)
PRIMARY KEY prefix
SOURCE(CLICKHOUSE(QUERY 'SELECT prefix, country_code, subdivision, city, latitude, longitude FROM {database}.geoip_city WHERE version = (SELECT max(version) FROM {database}.geoip_city)'))
LAYOUT(IP_TRIE())
LIFETIME(MIN 300 MAX 600);

CREATE DICTIONARY IF NOT EXISTS {database}.geoip_asn_dict
(
    prefix  String,
    asn     UInt32,
    asn_org String
)
PRIMARY KEY prefix
SOURCE(CLICKHOUSE(QUERY 'SELECT prefix, asn, asn_org FROM {database}.geoip_asn WHERE version = (SELECT max(version) FROM {database}.geoip_asn)'))
LAYOUT(IP_TRIE())
LIFETIME(MIN 300 MAX 600);

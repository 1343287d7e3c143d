#!/bin/sh
# Registers declstream's schemas in a Confluent Schema Registry, in the order
# of registry.properties, and checks that the registry gave each the id
# declstream uses for it (a fresh registry numbers schemas 1, 2, 3 ...).
#   register-schemas.sh REGISTRY_URL SCHEMA_DIR
# POSIX sh + curl + awk only (runs in the declstream runtime image).
set -eu
url=${1:?registry url}
dir=${2:?schema dir}

# subject of each id (registry.properties' comment table says the same)
subject() {
  case "$1" in
    1|3) echo customs.declarations-value ;;
    2|5) echo customs.totals-value ;;
    4) echo customs.top_headings-value ;;
    6) echo customs.totals.partial-value ;;
    7) echo customs.totals.partial-vn.customs.PartialRows ;;  # not compatible with 6: a subject of its own
    *) echo "declstream-schema-$1" ;;
  esac
}

# the schema file as a JSON string
json_string() {
  awk 'BEGIN { ORS = ""; print "\"" }
       { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, ""); print; print "\\n" }
       END { print "\"" }' "$1"
}

for i in $(seq 1 30); do curl -fsS "$url/subjects" >/dev/null 2>&1 && break; sleep 2; done

status=0
grep -E '^[[:space:]]*[0-9]+[[:space:]]*=' "$dir/registry.properties" | sort -n | while IFS='=' read -r id file; do
  id=$(echo "$id" | tr -d ' ')
  file=$(echo "$file" | tr -d ' ')
  subj=$(subject "$id")
  body="{\"schemaType\": \"AVRO\", \"schema\": $(json_string "$dir/$file")}"
  answer=$(curl -fsS -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
           --data "$body" "$url/subjects/$subj/versions") || { echo "register-schemas: $file ($subj) refused" >&2; exit 1; }
  got=$(echo "$answer" | sed -n 's/.*"id"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p')
  if [ "$got" != "$id" ]; then
    echo "register-schemas: $file got id $got in the registry, declstream uses $id: producers using the registry would be misread" >&2
    exit 1
  fi
  echo "register-schemas: id $id = $file ($subj)"
done || status=1
exit $status

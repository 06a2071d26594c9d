// The identification page: plain fetch() against the same API the scripts use.
const $ = (id) => document.getElementById(id);
const RANKS = ["order", "family", "genus", "species"];

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

async function problem(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return response.statusText; }
}

async function loadInfo() {
  const info = await (await fetch("/v1/info")).json();
  if (!info.ready) { $("info").textContent = "not ready: " + info.load_error; return; }
  const p = info.provenance;
  const sizes = Object.entries(p.index_size).map(([m, n]) => `${n} ${m} keys`).join(", ");
  $("info").textContent = `model ${p.model} · snapshot ${p.snapshot_id} · ${sizes}` +
    (p.thresholds ? "" : " · not calibrated: every answer is 'uncertain'") +
    (p.synthetic_references ? " · SYNTHETIC demo references: invented taxa, barcodes and drawings, not real species" : "");
}

function showFiles() {
  const n = $("images").files.length;
  $("drop-text").textContent = n ? `${n} photo(s) chosen` : "Drop photos here or click to choose (optional)";
}

function renderAnswer(a) {
  const id = a.identification;
  const v = $("verdict");
  v.className = "verdict " + id.status;
  v.textContent = id.status === "confident" ? `Confident: ${id.scientificName} (${id.taxonRank})`
    : id.status === "novel" ? `Novel: ${id.identificationRemarks}`
    : `Uncertain: ${id.identificationRemarks}`;
  const body = $("ranks").querySelector("tbody");
  body.replaceChildren();
  for (const rank of RANKS) {
    const r = a.ranks[rank];
    const tr = document.createElement("tr");
    tr.append(text("td", rank), text("td", r.label || "—"), text("td", r.score.toFixed(2)));
    const cell = document.createElement("td");
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("span"); fill.style.width = `${Math.round(r.score * 100)}%`;
    bar.append(fill); cell.append(bar, text("span", r.confident ? " confident" : "", "small"));
    tr.append(cell); body.append(tr);
  }
  $("per-modality").textContent = Object.entries(a.per_modality)
    .map(([m, x]) => `${m}: ${x.status}${x.deepest_rank ? " to " + x.deepest_rank : ""}`).join(" · ") +
    (a.decided_by.length ? ` · decided by ${a.decided_by.join(" + ")}` : "");
  const grid = $("neighbors");
  grid.replaceChildren();
  for (const n of a.neighbors) {
    const card = document.createElement("div"); card.className = "neighbor";
    if (n.has_image && n.modality === "image") {
      const img = document.createElement("img");
      img.src = `/v1/references/${encodeURIComponent(n.reference_id)}/thumbnail`; img.alt = n.species || n.reference_id;
      card.append(img);
    }
    card.append(text("div", n.species || n.genus || n.family || "?"), text("div", n.reference_id, "muted small"),
      text("div", n.modality + (n.similarity != null ? ` · cos ${n.similarity.toFixed(3)}` : "") +
        (n.percent_identity != null ? ` · ${n.percent_identity.toFixed(1)}% id over ${n.overlap} bp` : ""), "small"));
    grid.append(card);
  }
  const p = a.provenance;
  $("provenance").textContent = `checkpoint ${p.checkpoint_hash.slice(0, 12)} · snapshot ${p.snapshot_id}`;
  $("answer").hidden = false;
}

async function identify(event) {
  event.preventDefault();
  $("identify-error").hidden = true;
  const form = new FormData();
  for (const f of $("images").files) form.append("images", f);
  if ($("barcode").value.trim()) form.append("barcode", $("barcode").value);
  form.append("top_k", $("top_k").value || "10");
  if ($("restrict_to").value.trim()) form.append("restrict_to", $("restrict_to").value.trim());
  $("identify-button").disabled = true;
  try {
    const r = await fetch("/v1/identify", { method: "POST", body: form });
    if (!r.ok) throw new Error(await problem(r));
    renderAnswer(await r.json());
  } catch (e) {
    $("answer").hidden = true;
    $("identify-error").textContent = e.message; $("identify-error").hidden = false;
  } finally { $("identify-button").disabled = false; }
}

async function watch(job) {
  const p = await (await fetch(job.status_url)).json();
  $("job-progress").max = p.total; $("job-progress").value = p.done + p.failed;
  $("job-status").textContent = `${p.status}: ${p.done} done, ${p.failed} failed of ${p.total}` +
    (p.eta_seconds != null ? ` · about ${Math.ceil(p.eta_seconds)} s left` : "");
  if (p.status === "done") {
    for (const f of ["csv", "tsv", "dwc", "json"]) $("dl-" + f).href = `${job.results_url}?format=${f}`;
    $("job-links").hidden = false;
  } else setTimeout(() => watch(job), 700);
}

async function submitJob(event) {
  event.preventDefault();
  $("job-error").hidden = true; $("job-links").hidden = true;
  const form = new FormData();
  for (const [id, name] of [["job-fasta", "fasta"], ["job-manifest", "manifest"], ["job-zip", "images_zip"]])
    if ($(id).files.length) form.append(name, $(id).files[0]);
  try {
    const r = await fetch("/v1/jobs", { method: "POST", body: form });
    if (!r.ok) throw new Error(await problem(r));
    const job = await r.json();
    $("job").hidden = false;
    watch(job);
  } catch (e) { $("job-error").textContent = e.message; $("job-error").hidden = false; }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  $("images").files = e.dataTransfer.files; showFiles();
});
$("images").addEventListener("change", showFiles);
$("identify-form").addEventListener("submit", identify);
$("job-form").addEventListener("submit", submitJob);
loadInfo();

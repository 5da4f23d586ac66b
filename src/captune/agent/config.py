"""The agent's configuration schema (``captune agent run [CONFIG.yaml] key.path=value ...``).

The keys and defaults are those of the photography club's agent (``configs/agent/default.yaml``);
every field has a one-line docstring, which ``captune agent run --help-config`` lists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from captune.config import Schema

SEED_LABELS = ["group photo", "people", "nature", "food", "night", "landscape", "indoors", "outdoors", "person"]
OPENERS = ["Highlights from", "Moments from", "Scenes from", "Snapshots of"]
CLUB_PROMPT = ("Write an Instagram caption for photos from {event}. Labels: {labels}. "
               "Keep it natural and clean. No hashtags.")


class EmbeddingsSection(Schema):
    backend: Literal["hf", "open_clip"] = "hf"
    """hf: any Hugging Face CLIP (hub id, local folder or a registry name); open_clip: needs the open_clip extra."""
    model: str = "openai/clip-vit-base-patch32"
    """CLIP model; `shapes-clip` is the shipped tiny CLIP of the demo."""
    pretrained: str | None = None
    """open_clip only: the pretrained tag, e.g. laion2b_s34b_b79k."""
    device: str = "auto"
    """cpu, cuda, cuda:1 ... or auto (a GPU when one is visible)."""
    batch_size: int = Field(32, ge=1)
    """Images embedded per forward pass."""


class DedupeSection(Schema):
    method: Literal["hash", "clip", "both"] = "both"
    """Exact copies (sha256) are always found; hash adds perceptual hashes, clip adds CLIP cosine within bursts."""
    clip_threshold: float = Field(0.80, ge=-1, le=1)
    """Two photos shot within burst_seconds are the same shot when their CLIP cosine is at least this."""
    hash_threshold: int = Field(48, ge=0, le=256)
    """Two photos are the same shot, whenever taken, when their 256-bit pHashes differ in at most this many bits."""
    burst_seconds: float = Field(10.0, ge=0)
    """Time window for the CLIP test: shots further apart are never merged on CLIP similarity alone."""


class QualitySection(Schema):
    enabled: bool = True
    """Flag blurred and badly exposed photos (they stay out of posts but are listed)."""
    size: int = Field(256, ge=32)
    """Side of the grey copy the Laplacian is taken on (makes sharpness independent of resolution)."""
    min_sharpness: float = Field(0.0, ge=0)
    """Absolute floor on the variance of the Laplacian (0: off; smooth but sharp photos score low)."""
    min_relative_sharpness: float = Field(0.25, ge=0, le=1)
    """Blurred when sharpness is below this fraction of the median of the photos shot within window_minutes."""
    min_blur_effect: float = Field(0.45, ge=0, le=1)
    """...and only when its own blur effect (Crete et al., 0 sharp .. 1 blurred) is at least this."""
    window_minutes: float = Field(30.0, gt=0)
    """Neighbourhood (shooting time) the relative sharpness is measured against."""
    max_clipped_fraction: float = Field(0.5, ge=0, le=1)
    """Under- or overexposed when more than this fraction of pixels is clipped dark or bright."""


class CategorizeSection(Schema):
    labels: list[str] = Field(default_factory=lambda: list(SEED_LABELS))
    """Zero-shot labels."""
    prompt_template: str = "a photo of {label}"
    """Text each label is embedded as."""
    score: Literal["binary", "softmax"] = "binary"
    """binary: each label against neutral_prompt (multi-label); softmax: the labels compete (one label per photo)."""
    neutral_prompt: str = "a photo"
    """binary: the text each label's prompt is compared with."""
    threshold: float = Field(0.40, ge=0, le=1)
    """Keep a label when its score (0-1, see score) is at least this."""
    topk: int = Field(3, ge=1)
    """At most this many labels per photo."""

    @field_validator("prompt_template")
    @classmethod
    def _has_label(cls, v: str) -> str:
        if "{label}" not in v:
            raise ValueError("must contain {label}")
        return v


class ClusterSection(Schema):
    k: Literal["auto"] | int = "auto"
    """Groups per event: auto (best silhouette) or a number (capped by the event's photos)."""
    time_gap_minutes: float = Field(90.0, gt=0)
    """A gap in shooting time longer than this starts a new event."""
    max_images_per_post: int = Field(6, ge=1, le=10)
    """No post holds more photos: larger groups are split in two until they fit."""
    max_k: int = Field(12, ge=2)
    """auto: the largest k tried per event."""
    min_mean_images_per_post: int = Field(3, ge=1)
    """auto: no k that leaves an event's groups fewer than this many photos on average (k <= n / this)."""
    use_label_features: bool = False
    """Fuse the label scores into the embedding before clustering."""
    label_weight: float = Field(0.35, ge=0)
    """Weight of the label scores in the fused vector."""
    label_norm: Literal["zscore", "none"] = "zscore"
    """Standardise each label's scores over the photos before fusing."""
    fuse_normalize: bool = True
    """L2-normalise the fused vectors."""
    seed: int = 0
    """k-means seed (the same seed gives the same posts)."""


class SelectionSection(Schema):
    k: int = Field(48, ge=1)
    """At most this many photos in posts over the whole run; the rest are listed as beyond_selection."""


class CaptionerSection(Schema):
    mode: Literal["template", "model", "hybrid"] = "template"
    """template: opener + event + labels; model: a captioning model; hybrid: model unless its CLIPScore is low."""
    hybrid_min_clipscore: float = Field(0.18, ge=0)
    """hybrid: below this CLIPScore the template caption is used (the reason is recorded)."""
    model: str = "shapes-blip2-opt"
    """Captioning model (registry name, hub id or folder) for model and hybrid."""
    adapter_path: str | None = None
    """A fine-tuned adapter (a checkpoint folder of `captune train`)."""
    prompt: str = CLUB_PROMPT
    """Prompt for the model, with {event} and {labels}."""
    event_names: dict[str, str] = Field(default_factory=dict)
    """Names for events by id (e01: Spring Fair), as a run's report lists them; others are named by date."""
    input: Literal["montage", "cover"] = "montage"
    """What the model and CLIPScore see: the montage of the post or its cover photo."""
    max_new_tokens: int = Field(40, ge=1)
    """Longest model caption, in tokens."""
    openers: list[str] = Field(default_factory=lambda: list(OPENERS))
    """Template openers, picked per post (deterministic for the seed)."""
    base_hashtags: list[str] = Field(default_factory=lambda: ["#IITGuwahati", "#Montage", "#PhotographyClub"])
    """Hashtags on every post."""
    label_hashtags: dict[str, list[str]] = Field(default_factory=lambda: {
        "portrait": ["#Portrait", "#Faces"], "group photo": ["#GroupShot", "#Team"],
        "stage": ["#Stage", "#Concert", "#Live"], "audience": ["#Audience", "#Vibes"],
        "speaker": ["#Speaker", "#Talk"], "award": ["#Awards", "#Winners"], "sports": ["#Sports", "#Action"],
        "food": ["#Food", "#Treats"], "night": ["#Night", "#LowLight"], "indoors": ["#Indoors"],
        "outdoors": ["#Outdoors"]})
    """Hashtags added per label of the post."""
    max_hashtags: int = Field(15, ge=0, le=30)
    """At most this many hashtags (Instagram allows 30)."""
    include_swipe_hint: bool = False
    """End carousel captions with "Swipe →"."""
    montage_max_tiles: int = Field(9, ge=1)
    """Tiles packed into the montage."""
    montage_tile_px: int = Field(384, ge=16)
    """Side of one montage tile, in pixels."""
    calc_clipscore: bool = True
    """Score every caption with CLIPScore (the embeddings' CLIP)."""
    aspect: Literal["pad", "crop"] = "pad"
    """Photos outside Instagram's 4:5 to 1.91:1 are padded (or cropped) to fit."""
    max_width: int = Field(1440, ge=320, le=1440)
    """Exported images are at most this wide."""
    jpeg_quality: int = Field(90, ge=50, le=100)
    """JPEG quality of exported images (lowered when an image would exceed 8 MB)."""
    seed: int = 0
    """Seed of the template's choices and of sampling."""


class PublisherSection(Schema):
    enabled: bool = False
    """Publishing to Instagram is off unless enabled (live needs enabled, dry_run false and --live)."""
    dry_run: bool = True
    """Write publish/plan.jsonl only: the requests publishing would make, nothing sent."""
    graph_url: str = "https://graph.facebook.com/v23.0"
    """The Instagram Graph API base URL, including its version."""
    ig_user_id: str | None = None
    """The Instagram professional account's user id (the {ig-user-id} of the Graph API)."""
    access_token_env: str = "CAPTUNE_IG_TOKEN"
    """Name of the environment variable holding the access token (the token itself is never in a file)."""
    image_base_url: str | None = None
    """Public URL where OUT_DIR/posts/ is hosted: OUT_DIR/posts/e01-p01/01.jpg is at IMAGE_BASE_URL/e01-p01/01.jpg."""
    poll_interval_s: float = Field(5.0, gt=0)
    """Seconds between container status checks; retries back off from it, doubling."""
    poll_timeout_s: float = Field(300.0, gt=0)
    """Give up waiting for a container to be FINISHED after this long (the post resumes on the next run)."""
    max_posts_per_run: int = Field(10, ge=1)
    """At most this many posts published per run (the account's daily cap is read from the API)."""
    timeout_s: float = Field(30.0, gt=0)
    """Timeout of every HTTP request, in seconds."""

    @field_validator("ig_user_id", mode="before")
    @classmethod
    def _id_as_text(cls, v: object) -> object:
        """YAML reads an unquoted id (17841400000000001) as a number: take it as the text it was."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("graph_url", "image_base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://example.org/club-night")
        return v.rstrip("/") if v else v


class AgentConfig(Schema):
    embeddings: EmbeddingsSection = Field(default_factory=EmbeddingsSection)
    dedupe: DedupeSection = Field(default_factory=DedupeSection)
    quality: QualitySection = Field(default_factory=QualitySection)
    categorize: CategorizeSection = Field(default_factory=CategorizeSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    selection: SelectionSection = Field(default_factory=SelectionSection)
    captioner: CaptionerSection = Field(default_factory=CaptionerSection)
    publisher: PublisherSection = Field(default_factory=PublisherSection)

/*
 * mml.h: the C ABI of mml (libmmlc.so), for embedding mml's multi-level few-shot metric in other languages.
 *
 * Build:   swift build -c release --product mmlc      -> .build/release/libmmlc.so
 * Link:    cc app.c -I Sources/MMLCAPI/include -L .build/release -lmmlc -Wl,-rpath,<dir of libmmlc.so>
 *
 * Conventions
 * - Every fallible function returns an mml_status (0 = MML_OK). On failure it sets the calling thread's last
 *   error, read with mml_last_error(): what was wrong, where and what to do. Nothing prints, exits or traps on bad
 *   input: NULL pointers, ranks, dimensions < 1, sizes whose byte count overflows, freed or wrong-kind handles, bad
 *   JSON and every engine error (shapes, labels, NaN/Inf, missing or corrupt files) come back as a status.
 * - Out-parameters (T **out) are set to NULL first and to a new object on success.
 * - Handles (mml_metric, mml_model, mml_scores, mml_tensor) are opaque and owned by the caller until their
 *   *_free function. The library keeps a registry of live handles: a call with a freed, never-created or
 *   wrong-kind handle returns MML_ERR_INVALID_HANDLE (it is not undefined behaviour), and so does a second free.
 *   Handle values are never reused, so a stale handle is always recognised. Freeing a handle while another thread
 *   uses it is safe: the object goes when that call returns.
 * - Strings returned through char **out are malloc'ed; free them with mml_string_free.
 * - Inputs are caller-owned float32 / int64 buffers in C order (row-major, contiguous), read during the call only.
 *   The library copies them once into its own tensors; it never writes to them and keeps no pointer to them.
 * - JSON configurations: the fields given are laid over the defaults (mml_default_configuration prints them),
 *   nested objects field by field; an unknown field or a value of the wrong type is MML_ERR_CONFIG naming it.
 *
 * Threads
 * - Every function may be called from several threads at once.
 * - A metric is immutable: any number of threads may score with one mml_metric at once, without a lock.
 * - mml_model_features takes the model's own lock (the backbone's layers are not safe for concurrent forwards):
 *   calls on one model run one at a time; different models run in parallel.
 * - The handle registry is guarded by one internal lock held only for a lookup (never during computation).
 * - Kernel threads: `threads` arguments give the engine's kernel threads (0 = all cores); results do not depend
 *   on it.
 */
#ifndef MML_H
#define MML_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
typedef enum mml_status {
    MML_OK = 0,
    MML_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, bad rank/size, shape or label mismatch, too few classes */
    MML_ERR_CONFIG = 2,           /* bad JSON, unknown field, invalid configuration value */
    MML_ERR_FILE = 3,             /* a missing, unreadable, corrupt or unsupported file */
    MML_ERR_NUMERICAL = 4,        /* NaN/Inf in inputs, a covariance that is not positive definite, ... */
    MML_ERR_INVALID_HANDLE = 5,   /* a freed, never-created or wrong-kind handle */
    MML_ERR_INTERNAL = 6          /* anything else (a bug: please report the message) */
} mml_status;

typedef struct mml_metric mml_metric; /* a multi-level metric (configuration or trained checkpoint) */
typedef struct mml_model mml_model;   /* a loaded checkpoint: backbone (+ metric) */
typedef struct mml_scores mml_scores; /* one scored episode */
typedef struct mml_tensor mml_tensor; /* a float32 tensor result */

/* The ABI version, "MAJOR.MINOR" (static string): 1.1 added mml_environment. */
const char *mml_version(void);

/* What this process computes with, as compact JSON (RuntimeFacts): "cpu", "cpuFeatures", "cores", "blasConfig",
 * "blasCore", "blasCoreSource", "blasBestCore", "blasThreads", "kernels" (mml's kernel path: "avx512", "avx2" or
 * "portable"), "kernelsBest" (the CPU's best), "kernelsSetting" (MML_KERNELS_ISA, when set), "bf16Similarity" /
 * "bf16amxSimilarity" (their paths) with "bf16SimilarityReason" / "bf16amxSimilarityReason" (why portable), and
 * "blasWarning" (OpenBLAS chose slower kernels than the CPU allows). Log it beside a harness's figures: the
 * Gaussian kernels' paths round differently. Free with mml_string_free. */
int mml_environment(char **out);

/* The calling thread's last error message ("" if none). Valid until the thread's next failing call. */
const char *mml_last_error(void);
/* The same message with configuration fields in backquotes as the engine wrote it (`pixelNeighbours`), so a
 * binding can render field names in its own words. */
const char *mml_last_error_template(void);

/* Frees a string returned through char **out (NULL is ignored). */
void mml_string_free(char *s);

/* The default configuration of `kind` as compact JSON: "metric" (MetricConfiguration), "episodes" (an episode
 * list: dataset, way, shot, query, episodes, seed, dropSmallClasses, out) or "evaluation" (mml eval's
 * configuration). Fields: docs/API.md and docs/PYTHON.md. */
int mml_default_configuration(const char *kind, char **out);

/* ---- Metrics ------------------------------------------------------------------------------------------------ */

/* A metric from a JSON MetricConfiguration (NULL or "{}" = the defaults), e.g.
 *   {"levels":["pixel","distribution"],"pixelNeighbours":3,"partForm":"grid:3,2","distance":"kl","fusion":"learned"}
 * Without trained statistics the learned fusion normalises each level over the episode (as `mml score`). */
int mml_metric_create(const char *json, int threads, mml_metric **out);

/* The trained metric of an episodic checkpoint (.safetensors): fusion weights and statistics from training. */
int mml_metric_from_checkpoint(const char *path, int threads, mml_metric **out);

/* {"configuration": {...}, "description": "...", "levels": ["pixel", ...]} */
int mml_metric_describe(const mml_metric *metric, char **out);

int mml_metric_free(mml_metric *metric);

/* Scores one episode.
 *   support        float32, shape support_shape: (N_s, C, H, W) feature maps (rank 4) or (N_s, M, C) descriptor
 *                  sets (rank 3)
 *   support_labels N_s int64 labels, any integers: score column j is the j-th distinct label in order of first
 *                  appearance (mml_scores_classes)
 *   query          float32, shape query_shape: the support's layout, C and H, W (or M)
 *   rank           3 or 4, for both shapes
 *   way            the expected number of classes, or 0 for any
 * Gives exactly what `mml score` gives for the same inputs and metric. */
int mml_score_episode(const mml_metric *metric, const float *support, const int64_t *support_shape,
                      const int64_t *support_labels, const float *query, const int64_t *query_shape, int rank,
                      int64_t way, mml_scores **out);

/* Scores `episodes` episodes of one shape: support is episodes x support_shape floats, support_labels
 * episodes x N_s, query episodes x query_shape, one after the other. out points to an array of `episodes`
 * handles, all set on success and all NULL on failure (the message names the episode). */
int mml_score_batch(const mml_metric *metric, int64_t episodes, const float *support, const int64_t *support_shape,
                    const int64_t *support_labels, const float *query, const int64_t *query_shape, int rank,
                    int64_t way, mml_scores **out);

/* Accessors. On a bad handle or index they return -1 / NULL and set the last error. Pointers stay valid until
 * mml_scores_free. Score matrices are queries x way float32, row-major. */
int64_t mml_scores_queries(const mml_scores *scores);
int64_t mml_scores_way(const mml_scores *scores);
int mml_scores_level_count(const mml_scores *scores);
const char *mml_scores_level_name(const mml_scores *scores, int level); /* "pixel", "part", "distribution" */
const float *mml_scores_level(const mml_scores *scores, int level);
const float *mml_scores_fused(const mml_scores *scores);
const int64_t *mml_scores_classes(const mml_scores *scores);     /* way entries: the label of each column */
const int64_t *mml_scores_predictions(const mml_scores *scores); /* queries entries: predicted labels */
int mml_scores_free(mml_scores *scores);

/* ---- Models ------------------------------------------------------------------------------------------------- */

/* Loads a checkpoint (any kind: episodic, pretrained, embedding). */
int mml_model_load(const char *path, int threads, mml_model **out);
/* The model configuration (backbone, image settings, metric) as JSON. */
int mml_model_describe(const mml_model *model, char **out);
/* Backbone features in inference mode: images (N, C_in, H, W) float32, rank 4, already resized and normalised as
 * the model's image settings say -> a tensor (N, C, h, w). Takes the model's lock. */
int mml_model_features(mml_model *model, const float *images, const int64_t *image_shape, int rank,
                       mml_tensor **out);
/* The model's trained metric (MML_ERR_INVALID_ARGUMENT for a model without a metric head). */
int mml_model_metric(const mml_model *model, mml_metric **out);
int mml_model_free(mml_model *model);

int mml_tensor_rank(const mml_tensor *tensor);                 /* -1 on a bad handle */
const int64_t *mml_tensor_shape(const mml_tensor *tensor);     /* rank entries */
const float *mml_tensor_data(const mml_tensor *tensor);        /* product of the shape, row-major */
int mml_tensor_free(mml_tensor *tensor);

/* ---- Runs --------------------------------------------------------------------------------------------------- */

/* An episode list, exactly the JSON `mml data episodes` writes for the same settings (episode i is a pure
 * function of (seed, i)). json: {"dataset": {"path": "synthetic" | a dataset root, "split": ..., ...}, "way": 5,
 * "shot": 1, "query": 15, "episodes": 600, "seed": 0, "dropSmallClasses": false, "out": null | "file.json"} */
int mml_episodes(const char *json, char **out);

/* Evaluates a checkpoint on episodes (sampled, or an episode list file: "episodeList"), as `mml eval`; out is the
 * result JSON of `mml eval --json`. json: {"checkpoint": "...", "dataset": {...}, "ways": [5], "shots": [1],
 * "query": 15, "episodes": 600, "seed": 0, "episodeList": null, ...}. */
int mml_evaluate(const char *json, char **out);

#ifdef __cplusplus
}
#endif

#endif /* MML_H */

/* Tests of the C ABI (include/mml.h) from C: every status, the last-error strings, the handle registry, scores
 * against a naive pixel-level reference, batch = single, threads. Built and run by `make test` (make capi-test).
 * Exits non-zero on the first failure, naming it. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml.h"

static int checks = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        checks++;                                                               \
        if (!(cond)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " (last error: %s)\n", mml_last_error());          \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

/* A call that must fail with `status` and a last error containing `text`. */
#define EXPECT_ERROR(call, status, text)                                                              \
    do {                                                                                              \
        int s_ = (call);                                                                              \
        CHECK(s_ == (status), "%s gave status %d, expected %d", #call, s_, (int)(status));            \
        CHECK(strstr(mml_last_error(), (text)) != NULL, "%s: message lacks '%s'", #call, (text));     \
    } while (0)

static unsigned long long rng_state = 12345;
static float uniform(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)0x1000000 - 0.5f;
}

enum { NS = 4, NQ = 3, C = 8, H = 3, W = 3, HW = H * W };
static float support[NS * C * HW], query[NQ * C * HW];
static const int64_t labels[NS] = {7, 3, 7, 3};
static const int64_t sshape[4] = {NS, C, H, W}, qshape[4] = {NQ, C, H, W};

/* DN4 pixel level with K = 1: for each query descriptor, the best cosine to any descriptor of the class, summed. */
static double naive_pixel(int q, int64_t cls) {
    double total = 0;
    for (int p = 0; p < HW; p++) {
        double best = -INFINITY;
        for (int s = 0; s < NS; s++) {
            if (labels[s] != cls) continue;
            for (int r = 0; r < HW; r++) {
                double dot = 0, nq = 0, ns = 0;
                for (int c = 0; c < C; c++) {
                    double a = query[(q * C + c) * HW + p], b = support[(s * C + c) * HW + r];
                    dot += a * b; nq += a * a; ns += b * b;
                }
                double cosv = dot / (sqrt(nq) * sqrt(ns));
                if (cosv > best) best = cosv;
            }
        }
        total += best;
    }
    return total;
}

struct job { mml_metric *metric; float fused[NQ * 2]; int status; };

static void *score_in_thread(void *arg) {
    struct job *j = arg;
    for (int round = 0; round < 20; round++) {
        mml_scores *s = NULL;
        j->status = mml_score_episode(j->metric, support, sshape, labels, query, qshape, 4, 0, &s);
        if (j->status != MML_OK) return NULL;
        memcpy(j->fused, mml_scores_fused(s), sizeof j->fused);
        mml_scores_free(s);
    }
    return NULL;
}

static void *fail_in_thread(void *arg) {
    (void)arg;
    mml_metric *m = NULL;
    int s = mml_metric_create("{\"distance\": \"nope\"}", 0, &m);
    return (void *)(long)(s == MML_ERR_CONFIG && strstr(mml_last_error(), "nope") != NULL);
}

int main(void) {
    for (int i = 0; i < NS * C * HW; i++) support[i] = uniform();
    for (int i = 0; i < NQ * C * HW; i++) query[i] = uniform();
    CHECK(strcmp(mml_version(), "1.1") == 0, "version");
    char *facts = NULL;
    CHECK(mml_environment(&facts) == MML_OK && facts && facts[0] == '{' && strstr(facts, "\"kernels\":\"")
              && strstr(facts, "\"blasCore\":\"") && strstr(facts, "\"cores\":"), "environment");
    mml_string_free(facts);
    CHECK(strcmp(mml_last_error(), "") == 0, "no error yet");
    EXPECT_ERROR(mml_environment(NULL), MML_ERR_INVALID_ARGUMENT, "out (char **)");

    /* Configurations and metrics. */
    char *text = NULL;
    CHECK(mml_default_configuration("metric", &text) == MML_OK && strstr(text, "\"pixelNeighbours\":1"), "default");
    mml_string_free(text);
    EXPECT_ERROR(mml_default_configuration("nope", &text), MML_ERR_INVALID_ARGUMENT, "unknown configuration kind");
    CHECK(text == NULL, "out reset to NULL on failure");
    mml_metric *metric = NULL;
    EXPECT_ERROR(mml_metric_create("{", 0, &metric), MML_ERR_CONFIG, "not valid JSON");
    EXPECT_ERROR(mml_metric_create("[1]", 0, &metric), MML_ERR_CONFIG, "must be a JSON object");
    EXPECT_ERROR(mml_metric_create("{\"pixelK\": 3}", 0, &metric), MML_ERR_CONFIG, "has no field pixelK");
    CHECK(strstr(mml_last_error_template(), "has no field `pixelK`") != NULL, "template keeps backquotes");
    EXPECT_ERROR(mml_metric_create("{\"pixelNeighbours\": \"x\"}", 0, &metric), MML_ERR_CONFIG, "pixelNeighbours");
    EXPECT_ERROR(mml_metric_create("{\"distance\": \"nope\"}", 0, &metric), MML_ERR_CONFIG, "unknown distribution distance");
    EXPECT_ERROR(mml_metric_create("{\"levels\": []}", 0, &metric), MML_ERR_CONFIG, "levels");
    EXPECT_ERROR(mml_metric_create("{}", -1, &metric), MML_ERR_INVALID_ARGUMENT, "threads is -1");
    EXPECT_ERROR(mml_metric_create("{}", 0, NULL), MML_ERR_INVALID_ARGUMENT, "out (mml_metric **) is NULL");
    EXPECT_ERROR(mml_metric_from_checkpoint("/nonexistent/x.safetensors", 0, &metric), MML_ERR_FILE, "/nonexistent/x.safetensors");
    EXPECT_ERROR(mml_metric_from_checkpoint(NULL, 0, &metric), MML_ERR_INVALID_ARGUMENT, "path is NULL");
    CHECK(metric == NULL, "no metric after failures");

    /* Pixel level against the naive reference; labels any integers, columns in order of first appearance. */
    CHECK(mml_metric_create("{\"levels\": [\"pixel\"], \"pixelNeighbours\": 1}", 1, &metric) == MML_OK, "create");
    CHECK(mml_metric_describe(metric, &text) == MML_OK && strstr(text, "\"levels\":[\"pixel\"]"), "describe %s", text);
    mml_string_free(text);
    mml_scores *scores = NULL;
    CHECK(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 2, &scores) == MML_OK, "score");
    CHECK(mml_scores_queries(scores) == NQ && mml_scores_way(scores) == 2, "dims");
    CHECK(mml_scores_level_count(scores) == 1 && strcmp(mml_scores_level_name(scores, 0), "pixel") == 0, "levels");
    CHECK(mml_scores_classes(scores)[0] == 7 && mml_scores_classes(scores)[1] == 3, "classes");
    const float *pixel = mml_scores_level(scores, 0);
    for (int q = 0; q < NQ; q++)
        for (int c = 0; c < 2; c++) {
            double ref = naive_pixel(q, c == 0 ? 7 : 3);
            CHECK(fabs(pixel[q * 2 + c] - ref) <= 1e-4 + 1e-5 * fabs(ref), "pixel[%d,%d] %f vs %f", q, c, pixel[q * 2 + c], ref);
        }
    for (int q = 0; q < NQ; q++) {
        const float *f = mml_scores_fused(scores) + q * 2;
        CHECK(mml_scores_predictions(scores)[q] == (f[0] >= f[1] ? 7 : 3), "prediction %d", q);
    }
    CHECK(mml_scores_level(scores, 1) == NULL && strstr(mml_last_error(), "level index 1 is outside 0..<1"), "index");
    CHECK(mml_scores_level_name(scores, -1) == NULL, "negative index");
    CHECK(mml_scores_free(scores) == MML_OK, "free scores");
    CHECK(mml_scores_fused(scores) == NULL && strstr(mml_last_error(), "not a live handle"), "freed scores");
    CHECK(mml_scores_way(scores) == -1 && mml_scores_queries(NULL) == -1, "accessor on bad handle");
    EXPECT_ERROR(mml_scores_free(scores), MML_ERR_INVALID_HANDLE, "not a live handle");
    CHECK(mml_metric_free(metric) == MML_OK, "free metric");

    /* Every input error of scoring. */
    CHECK(mml_metric_create(NULL, 0, &metric) == MML_OK, "default metric");
    int64_t bad[4] = {NS, C, H, W};
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 5, 0, &scores), MML_ERR_INVALID_ARGUMENT, "rank 5");
    bad[2] = 0;
    EXPECT_ERROR(mml_score_episode(metric, support, bad, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "dimension 2 is 0");
    int64_t huge[4] = {1LL << 40, 1LL << 40, 1, 1};
    EXPECT_ERROR(mml_score_episode(metric, support, huge, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "overflows");
    EXPECT_ERROR(mml_score_episode(metric, NULL, sshape, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "support data is NULL");
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, NULL, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "support_labels is NULL");
    EXPECT_ERROR(mml_score_episode(metric, support, NULL, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "support_shape is NULL");
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 3, &scores), MML_ERR_INVALID_ARGUMENT, "way is 3");
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, -2, &scores), MML_ERR_INVALID_ARGUMENT, "way is -2");
    int64_t otherc[4] = {NQ, C / 2, H, W};
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, otherc, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "channels");
    float saved = support[5];
    support[5] = NAN;
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, &scores), MML_ERR_NUMERICAL, "element 5");
    support[5] = saved;
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, NULL), MML_ERR_INVALID_ARGUMENT, "out (mml_scores **)");
    EXPECT_ERROR(mml_score_episode(NULL, support, sshape, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_ARGUMENT, "metric is NULL");
    CHECK(scores == NULL, "no scores after failures");

    /* Batch = one by one. */
    float support2[2 * NS * C * HW], query2[2 * NQ * C * HW];
    int64_t labels2[2 * NS] = {7, 3, 7, 3, 1, 1, 2, 2};
    memcpy(support2, support, sizeof support); memcpy(support2 + NS * C * HW, support, sizeof support);
    memcpy(query2, query, sizeof query); memcpy(query2 + NQ * C * HW, query, sizeof query);
    mml_scores *batch[2] = {NULL, NULL};
    CHECK(mml_score_batch(metric, 2, support2, sshape, labels2, query2, qshape, 4, 0, batch) == MML_OK, "batch");
    CHECK(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, &scores) == MML_OK, "single");
    CHECK(mml_scores_level_count(batch[0]) == 3, "three levels by default");
    for (int i = 0; i < NQ * 2; i++)
        CHECK(mml_scores_fused(batch[0])[i] == mml_scores_fused(scores)[i], "batch episode 0 = single at %d", i);
    CHECK(mml_scores_classes(batch[1])[0] == 1 && mml_scores_classes(batch[1])[1] == 2, "batch episode 1 classes");
    mml_scores_free(batch[0]); mml_scores_free(batch[1]); mml_scores_free(scores);
    labels2[5] = 9; /* episode 1 now has 3 classes */
    EXPECT_ERROR(mml_score_batch(metric, 2, support2, sshape, labels2, query2, qshape, 4, 2, batch), MML_ERR_INVALID_ARGUMENT, "3 distinct values");
    CHECK(batch[0] == NULL && batch[1] == NULL, "batch all NULL on failure");
    EXPECT_ERROR(mml_score_batch(metric, 0, support2, sshape, labels2, query2, qshape, 4, 0, batch), MML_ERR_INVALID_ARGUMENT, "episodes is 0");

    /* Threads: four threads score with one metric at once and agree with serial results; last errors are per thread. */
    CHECK(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, &scores) == MML_OK, "serial");
    struct job jobs[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) { jobs[t].metric = metric; pthread_create(&threads[t], NULL, score_in_thread, &jobs[t]); }
    for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < 4; t++) {
        CHECK(jobs[t].status == MML_OK, "thread %d", t);
        CHECK(memcmp(jobs[t].fused, mml_scores_fused(scores), sizeof jobs[t].fused) == 0, "thread %d = serial", t);
    }
    mml_scores_free(scores);
    EXPECT_ERROR(mml_metric_free(NULL), MML_ERR_INVALID_ARGUMENT, "metric is NULL");
    pthread_t failing;
    void *ok = NULL;
    pthread_create(&failing, NULL, fail_in_thread, NULL);
    pthread_join(failing, &ok);
    CHECK(ok != NULL, "the other thread saw its own error");
    CHECK(strstr(mml_last_error(), "metric is NULL") != NULL, "this thread's last error is unchanged");

    /* Freed and wrong-kind handles. */
    CHECK(mml_metric_free(metric) == MML_OK, "free");
    EXPECT_ERROR(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, &scores), MML_ERR_INVALID_HANDLE, "not a live handle");
    EXPECT_ERROR(mml_metric_free(metric), MML_ERR_INVALID_HANDLE, "not a live handle");
    mml_metric *stale = metric;
    CHECK(mml_metric_create(NULL, 0, &metric) == MML_OK, "again");
    CHECK(metric != stale, "handle values are not reused");
    EXPECT_ERROR(mml_metric_describe(stale, &text), MML_ERR_INVALID_HANDLE, "not a live handle");
    CHECK(mml_score_episode(metric, support, sshape, labels, query, qshape, 4, 0, &scores) == MML_OK, "again");
    EXPECT_ERROR(mml_metric_describe((mml_metric *)scores, &text), MML_ERR_INVALID_HANDLE, "is a scores handle, not a metric handle");
    mml_scores_free(scores);
    mml_metric_free(metric);

    /* Models, tensors and runs. */
    mml_model *model = NULL;
    EXPECT_ERROR(mml_model_load("/nonexistent/m.safetensors", 0, &model), MML_ERR_FILE, "/nonexistent/m.safetensors");
    mml_tensor *tensor = NULL;
    EXPECT_ERROR(mml_model_features(model, support, sshape, 4, &tensor), MML_ERR_INVALID_ARGUMENT, "model is NULL");
    CHECK(mml_tensor_rank(NULL) == -1 && mml_tensor_data(NULL) == NULL && mml_tensor_shape(NULL) == NULL, "tensor NULL");
    EXPECT_ERROR(mml_tensor_free(NULL), MML_ERR_INVALID_ARGUMENT, "tensor is NULL");
    const char *ep = "{\"dataset\": {\"path\": \"synthetic\", \"split\": \"test\", \"syntheticSize\": 8, \"syntheticImages\": 6},"
                     " \"way\": 3, \"shot\": 1, \"query\": 2, \"episodes\": 2, \"seed\": 4}";
    CHECK(mml_episodes(ep, &text) == MML_OK && strstr(text, "\"episodes\" : [") && strstr(text, "\"seed\" : 4"), "episodes %s", text);
    mml_string_free(text);
    EXPECT_ERROR(mml_episodes("{\"episodes\": 0}", &text), MML_ERR_INVALID_ARGUMENT, "episodes must be >= 1");
    EXPECT_ERROR(mml_episodes("{\"dataset\": {\"path\": \"/nonexistent/data\"}}", &text), MML_ERR_FILE, "/nonexistent/data");
    EXPECT_ERROR(mml_episodes("{\"dataset\": {\"pth\": \"x\"}}", &text), MML_ERR_CONFIG, "has no field dataset.pth");
    EXPECT_ERROR(mml_evaluate("{}", &text), MML_ERR_CONFIG, "checkpoint is missing");
    EXPECT_ERROR(mml_evaluate("{\"checkpoint\": \"/nonexistent/c.safetensors\"}", &text), MML_ERR_FILE, "/nonexistent/c.safetensors");
    EXPECT_ERROR(mml_evaluate(NULL, &text), MML_ERR_INVALID_ARGUMENT, "json is NULL");

    printf("capi_test: %d checks passed\n", checks);
    return 0;
}

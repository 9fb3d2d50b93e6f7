/* A run's picture: the training loss and the evaluation metric over steps, read from its
 * log.jsonl and drawn as SVG text (no plotting library), side by side. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/reproduce/reproduce.h"

typedef struct {
    double *x, *y;
    int n;
} Series;

static void push(Series *s, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    s->x = xrealloc(s->x, (s->n + 1) * sizeof(double));
    s->y = xrealloc(s->y, (s->n + 1) * sizeof(double));
    s->x[s->n] = x, s->y[s->n++] = y;
}

/* log.jsonl lines of type "train" (step, loss) and "eval" (step, metrics[metric]) */
static void read_log(char *text, const char *metric, Series *loss, Series *eval) {
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsString(type) && cJSON_IsNumber(step)) {
            if (!strcmp(type->valuestring, "train")) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "loss");
                if (cJSON_IsNumber(v)) push(loss, step->valuedouble, v->valuedouble);
            } else if (!strcmp(type->valuestring, "eval")) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metrics");
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, metric);
                if (cJSON_IsNumber(v)) push(eval, step->valuedouble, v->valuedouble);
            }
        }
        cJSON_Delete(o);
    }
}

static void range(const Series *s, double *lo, double *hi, const double *v) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < s->n; i++) *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
    if (*hi <= *lo) { /* one value: centre it */
        double d = fabs(*lo) * 0.05 + 1e-6;
        *lo -= d, *hi += d;
    }
}

/* one panel at x offset ox: frame, axis labels, the series as a polyline (and dots) */
static void panel(FILE *f, double ox, const char *title, const Series *s, int dots) {
    const double W = 300, H = 200, top = 40, left = 50;
    fprintf(f, "<text x='%g' y='25' font-size='13'>%s</text>\n", ox + left, title);
    fprintf(f, "<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#888'/>\n",
            ox + left, top, W, H);
    if (s->n == 0) {
        fprintf(f, "<text x='%g' y='%g' font-size='12'>no data</text>\n", ox + left + 10, top + 20);
        return;
    }
    double x0, x1, y0, y1;
    range(s, &x0, &x1, s->x);
    range(s, &y0, &y1, s->y);
    fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='end'>%.4g</text>\n", ox + left - 4, top + 8, y1);
    fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='end'>%.4g</text>\n", ox + left - 4, top + H, y0);
    fprintf(f, "<text x='%g' y='%g' font-size='10'>step %.0f</text>\n", ox + left, top + H + 14, x0);
    fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='end'>%.0f</text>\n", ox + left + W, top + H + 14, x1);
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.2' points='", dots ? "#c33" : "#36c");
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%.1f,%.1f ", ox + left + (s->x[i] - x0) / (x1 - x0) * W,
                top + H - (s->y[i] - y0) / (y1 - y0) * H);
    fprintf(f, "'/>\n");
    for (int i = 0; dots && i < s->n; i++)
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='#c33'/>\n",
                ox + left + (s->x[i] - x0) / (x1 - x0) * W, top + H - (s->y[i] - y0) / (y1 - y0) * H);
}

int svg_write_run(const char *run_dir, const char *title, const char *metric, const char *svg,
                  Error *e) {
    char *log = strfmt("%s/log.jsonl", run_dir), *text = NULL;
    int rc = file_exists(log) ? read_file(log, &text, NULL, e) : 0;
    free(log);
    if (rc != 0 || !text) return rc;
    Series loss = {0}, eval = {0};
    read_log(text, metric, &loss, &eval);
    free(text);
    char *tmp = strfmt("%s.tmp", svg);
    FILE *f = fopen(tmp, "w");
    if (!f) rc = errorf(e, "%s: cannot write", tmp);
    if (f) {
        char t1[160], t2[160];
        snprintf(t1, sizeof t1, "%s: training loss", title);
        snprintf(t2, sizeof t2, "%s: %s at evaluations", title, metric);
        fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='760' height='270' "
                   "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n");
        panel(f, 0, t1, &loss, 0);
        panel(f, 380, t2, &eval, 1);
        fprintf(f, "</svg>\n");
        if (fclose(f) != 0 || rename(tmp, svg) != 0) rc = errorf(e, "%s: cannot write", svg);
    }
    free(tmp);
    free(loss.x), free(loss.y), free(eval.x), free(eval.y);
    return rc;
}

/* transformers' get_linear_schedule_with_warmup as a pure function */
#ifndef KOE_SCHEDULE_H
#define KOE_SCHEDULE_H

/* the learning rate used by optimizer step number `steps_done` + 1 (LambdaLR is stepped after
 * each optimizer step, so the very first update runs with multiplier lambda(0)) */
static inline float linear_schedule_lr(float base_lr, int steps_done, int warmup, int total) {
    if (steps_done < warmup) return base_lr * (float)steps_done / (float)(warmup > 1 ? warmup : 1);
    float left = (float)(total - steps_done) / (float)(total - warmup > 1 ? total - warmup : 1);
    return base_lr * (left > 0.0f ? left : 0.0f);
}

#endif

/* src/ad/ctx_end.h -- closes a rule-language context. */
#undef K
#undef F1
#undef F2
#undef F3

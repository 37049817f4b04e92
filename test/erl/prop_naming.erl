%%% @doc PropEr properties: the naming results of `reckon_cnode_emitter_group'
%%% (served by the C node) equal an Erlang model of reckon-db's naming rules.
%%%
%%% The model below is written from the specification text only:
%%% <ul>
%%% <li>`topic(S, Sub)': the characters of atom `S' as latin-1 bytes, `:',
%%%   the bytes of `Sub'; `badarg' if a character of `S' is above 255;</li>
%%% <li>`emitter_name(S, Sub)': characters of `S', `_', each byte of `Sub'
%%%   as one character, `_emitter'; `emitter_name(S, Sub, N)' adds `_' and
%%%   `N' in decimal. `badarg' if a character of `S' is above 255 (checked
%%%   first), `system_limit' if the name has more than 255 characters;</li>
%%% <li>`persist_emitters(S, Sub, P)': base name, then numbered names
%%%   2..P; `P' must be an integer >= 1 (`badarg' otherwise); afterwards
%%%   `retrieve_emitters(S, Sub)' returns that list. A failed persist leaves
%%%   the stored list unchanged;</li>
%%% <li>wrong argument types: `badarg'.</li>
%%% </ul>
%%%
%%% The properties need the `reckon_cnode' application running and
%%% connected to a C node. {@link quickcheck_all/1} runs all of them.
%%% @end
-module(prop_naming).

-include_lib("proper/include/proper.hrl").

-export([quickcheck_all/1, properties/0]).
-export([model_topic/2, model_emitter_name/2, model_emitter_name/3,
         model_persist/3]).
-export([store_id/0, latin1_atom/0, wide_atom/0, sub_id/0, any_integer/0,
         pool_size/0]).

-define(MAX_ATOM_CHARS, 255).

-type outcome() :: {ok, term()} | {raised, error | exit | throw, term()}.

%%%===================================================================
%%% Running
%%%===================================================================

%% @doc Names of all properties in this module.
-spec properties() -> [atom()].
properties() ->
    [prop_group_key,
     prop_group_key_any_term,
     prop_topic,
     prop_emitter_name,
     prop_emitter_name_n,
     prop_persist_retrieve,
     prop_wrong_types].

%% @doc Runs every property with `NumTests' cases, output to `user'.
%% Returns `[{Property, true | Counterexample}]'.
-spec quickcheck_all(pos_integer()) -> [{atom(), term()}].
quickcheck_all(NumTests) ->
    [{P, proper:quickcheck(?MODULE:P(), [{numtests, NumTests}, {to_file, user},
                                         long_result])}
     || P <- properties()].

%%%===================================================================
%%% Model of reckon-db's naming rules
%%%===================================================================

%% @doc Model of `topic/2'.
-spec model_topic(term(), term()) -> outcome().
model_topic(S, Sub) when is_atom(S), is_binary(Sub) ->
    Chars = atom_to_list(S),
    case latin1(Chars) of
        true -> {ok, <<(list_to_binary(Chars))/binary, $:, Sub/binary>>};
        false -> {raised, error, badarg}
    end;
model_topic(_, _) ->
    {raised, error, badarg}.

%% @doc Model of `emitter_name/2'.
-spec model_emitter_name(term(), term()) -> outcome().
model_emitter_name(S, Sub) ->
    name(S, Sub, "").

%% @doc Model of `emitter_name/3'.
-spec model_emitter_name(term(), term(), term()) -> outcome().
model_emitter_name(S, Sub, N) when is_integer(N) ->
    name(S, Sub, "_" ++ integer_to_list(N));
model_emitter_name(_, _, _) ->
    {raised, error, badarg}.

%% @doc Model of `persist_emitters/3' (the returned list).
-spec model_persist(term(), term(), term()) -> outcome().
model_persist(S, Sub, P) when is_integer(P), P >= 1 ->
    names(S, Sub, [model_emitter_name(S, Sub)
                   | [model_emitter_name(S, Sub, N) || N <- lists:seq(2, P)]],
          []);
model_persist(_, _, _) ->
    {raised, error, badarg}.

names(_S, _Sub, [], Acc) ->
    {ok, lists:reverse(Acc)};
names(S, Sub, [{ok, Name} | Rest], Acc) ->
    names(S, Sub, Rest, [Name | Acc]);
names(_S, _Sub, [Raised | _], _Acc) ->
    Raised.

name(S, Sub, Suffix) when is_atom(S), is_binary(Sub) ->
    Chars = atom_to_list(S),
    case latin1(Chars) of
        false ->
            {raised, error, badarg};
        true ->
            Name = Chars ++ "_" ++ binary_to_list(Sub) ++ "_emitter" ++ Suffix,
            case length(Name) > ?MAX_ATOM_CHARS of
                true -> {raised, error, system_limit};
                false -> {ok, list_to_atom(Name)}
            end
    end;
name(_, _, _) ->
    {raised, error, badarg}.

latin1(Chars) ->
    lists:all(fun(C) -> C =< 255 end, Chars).

%%%===================================================================
%%% Generators
%%%===================================================================

%% @doc Store ids: latin-1 atoms, atoms with wider characters, and a few
%% fixed interesting ones.
-spec store_id() -> proper_types:type().
store_id() ->
    frequency([{4, latin1_atom()},
               {3, wide_atom()},
               {1, elements(['', '$all', store, 'café', reckon_db, 'a b:c',
                             list_to_atom(lists:duplicate(255, $x)),
                             list_to_atom(lists:duplicate(255, 255))])}]).

atom_length() ->
    frequency([{5, range(0, 10)}, {1, range(11, 239)}, {3, range(240, 255)}]).

%% @doc Atoms of 0..255 characters in 0..255.
-spec latin1_atom() -> proper_types:type().
latin1_atom() ->
    ?LET(Len, atom_length(),
         ?LET(Chars, vector(Len, range(0, 255)), list_to_atom(Chars))).

%% @doc Atoms of 1..255 characters with at least one above 255.
-spec wide_atom() -> proper_types:type().
wide_atom() ->
    ?LET(Len, atom_length(),
         ?LET({Chars, Wide, Pos},
              {vector(max(Len, 1) - 1, oneof([range(0, 255), wide_char()])),
               wide_char(), range(0, max(Len, 1) - 1)},
              begin
                  {Before, After} = lists:split(Pos, Chars),
                  list_to_atom(Before ++ [Wide | After])
              end)).

wide_char() ->
    oneof([range(256, 16#7FF),           % 2-byte UTF-8
           range(16#800, 16#D7FF),       % 3-byte, below the surrogates
           range(16#E000, 16#FFFF),      % 3-byte, above the surrogates
           range(16#10000, 16#10FFFF)]). % 4-byte

%% @doc Binaries of every byte value, lengths concentrated around 0..10
%% and the 255-character name limit.
-spec sub_id() -> proper_types:type().
sub_id() ->
    frequency([{8, ?LET(Len, frequency([{4, range(0, 10)},
                                         {1, range(11, 229)},
                                         {4, range(230, 260)}]),
                        ?LET(Bytes, vector(Len, range(0, 255)),
                             list_to_binary(Bytes)))},
               {1, elements([<<>>, <<"$all">>, <<"sub">>, <<"ü"/utf8>>,
                             <<255, 0, 10>>, <<0>>, <<":">>,
                             binary:copy(<<255>>, 246),
                             binary:copy(<<"a">>, 250)])}]).

%% @doc Integers: small, negative, 64-bit edges and bignums.
-spec any_integer() -> proper_types:type().
any_integer() ->
    oneof([range(-10, 10),
           integer(),
           elements([0, 1, 2, -1, 255, 256, (1 bsl 27) - 1, 1 bsl 27,
                     -(1 bsl 27), (1 bsl 31) - 1, 1 bsl 31, -(1 bsl 31),
                     (1 bsl 63) - 1, 1 bsl 63, -(1 bsl 63), -(1 bsl 63) - 1,
                     (1 bsl 64) - 1, 1 bsl 64, -(1 bsl 64)]),
           int64(),
           uint64(),
           bignum()]).

%% PropEr's integer ranges are biased towards small values by the size
%% parameter, so wide integers are built from uniformly random bytes.
int64() ->
    ?LET(Bytes, vector(8, range(0, 255)),
         begin <<I:64/signed>> = list_to_binary(Bytes), I end).

uint64() ->
    ?LET(Bytes, vector(8, range(0, 255)),
         begin <<I:64/unsigned>> = list_to_binary(Bytes), I end).

%% 9..130 bytes: up to ~313 decimal digits, across the 255-character limit.
bignum() ->
    ?LET({Sign, Len}, {elements([-1, 1]), range(9, 130)},
         ?LET(Bytes, vector(Len, range(0, 255)),
              Sign * ((1 bsl (8 * (Len - 1))) bor
                          binary:decode_unsigned(list_to_binary(Bytes))))).

%% @doc Pool sizes for `persist_emitters/3': mostly valid, some below 1.
-spec pool_size() -> proper_types:type().
pool_size() ->
    frequency([{6, range(1, 12)}, {1, range(-3, 0)}, {1, elements([100, -(1 bsl 70)])}]).

%% Terms of the wrong type for the typed arguments.
not_atom() ->
    oneof([binary(), integer(), float(), list(range(0, 255)), {}, #{},
           ?LET(B, bitstring(), B), elements([self(), make_ref()])]).

not_binary() ->
    oneof([atom_like(), integer(), float(), list(range(0, 255)), {x},
           ?SUCHTHAT(B, bitstring(), bit_size(B) rem 8 =/= 0)]).

atom_like() ->
    elements([a, '', sub, undefined, true]).

not_integer() ->
    oneof([float(), binary(), elements([a, "1", {1}, [], #{}])]).

%%%===================================================================
%%% Properties
%%%===================================================================

prop_group_key() ->
    ?FORALL({S, Sub}, {store_id(), sub_id()},
            equals(run(fun() -> reckon_cnode_emitter_group:group_key(S, Sub) end),
                   {ok, {S, Sub, emitters}})).

%% The seed builds the tuple without looking at the arguments.
prop_group_key_any_term() ->
    ?FORALL({S, Sub}, {any(), any()},
            equals(run(fun() -> reckon_cnode_emitter_group:group_key(S, Sub) end),
                   {ok, {S, Sub, emitters}})).

prop_topic() ->
    ?FORALL({S, Sub}, {store_id(), sub_id()},
            collect(kind(model_topic(S, Sub)),
                    equals(run(fun() -> reckon_cnode_emitter_group:topic(S, Sub) end),
                           model_topic(S, Sub)))).

prop_emitter_name() ->
    ?FORALL({S, Sub}, {store_id(), sub_id()},
            collect(kind(model_emitter_name(S, Sub)),
                    equals(run(fun() -> reckon_cnode_emitter_group:emitter_name(S, Sub) end),
                           model_emitter_name(S, Sub)))).

prop_emitter_name_n() ->
    ?FORALL({S, Sub, N}, {store_id(), sub_id(), any_integer()},
            collect(kind(model_emitter_name(S, Sub, N)),
                    equals(run(fun() ->
                                       reckon_cnode_emitter_group:emitter_name(S, Sub, N)
                               end),
                           model_emitter_name(S, Sub, N)))).

prop_persist_retrieve() ->
    ?FORALL({S, Sub, P}, {store_id(), sub_id(), pool_size()},
            begin
                Expected = model_persist(S, Sub, P),
                Before = run(fun() -> reckon_cnode_emitter_group:retrieve_emitters(S, Sub) end),
                Got = run(fun() -> reckon_cnode_emitter_group:persist_emitters(S, Sub, P) end),
                After = run(fun() -> reckon_cnode_emitter_group:retrieve_emitters(S, Sub) end),
                ExpectedAfter = case Expected of
                                    {ok, _} -> Expected;
                                    _ -> Before
                                end,
                collect(kind(Expected),
                        conjunction([{before_is_list, is_list_outcome(Before)},
                                     {persist, equals(Got, Expected)},
                                     {retrieve, equals(After, ExpectedAfter)}]))
            end).

prop_wrong_types() ->
    ?FORALL({Case, S, Sub, N},
            {elements([topic_s, topic_sub, name_s, name_sub, name_n_s, name_n_n,
                       persist_s, persist_sub]),
             not_atom(), not_binary(), not_integer()},
            begin
                Call = case Case of
                           topic_s -> {topic, [S, <<"sub">>]};
                           topic_sub -> {topic, [store, Sub]};
                           name_s -> {emitter_name, [S, <<"sub">>]};
                           name_sub -> {emitter_name, [store, Sub]};
                           name_n_s -> {emitter_name, [S, <<"sub">>, 2]};
                           name_n_n -> {emitter_name, [store, <<"sub">>, N]};
                           persist_s -> {persist_emitters, [S, <<"sub">>, 2]};
                           persist_sub -> {persist_emitters, [store, Sub, 2]}
                       end,
                {F, A} = Call,
                ?WHENFAIL(io:format(user, "call: ~p~n", [Call]),
                          equals(run(fun() -> apply(reckon_cnode_emitter_group, F, A) end),
                                 {raised, error, badarg}))
            end).

%%%===================================================================
%%% Helpers
%%%===================================================================

-spec run(fun(() -> term())) -> outcome().
run(F) ->
    try {ok, F()}
    catch Class:Reason -> {raised, Class, Reason}
    end.

kind({ok, _}) -> ok;
kind({raised, _, Reason}) -> Reason.

is_list_outcome({ok, L}) -> is_list(L);
is_list_outcome(_) -> false.
